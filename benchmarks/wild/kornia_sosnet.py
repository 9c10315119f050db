"""kornia's SOSNet descriptor in a matching head."""
import torch
import torch.nn as nn
import kornia.feature as KF


class Matcher(nn.Module):
    def __init__(self):
        super().__init__()
        self.desc = KF.SOSNet(pretrained=False)
        self.proj = nn.Linear(128, 64)

    def forward(self, patches):
        return self.proj(self.desc(patches))


def example_inputs():
    return torch.randn(16, 1, 32, 32)
