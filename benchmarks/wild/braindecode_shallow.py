"""braindecode ShallowFBCSPNet in a wrapper module."""
import torch
import torch.nn as nn
from braindecode.models import ShallowFBCSPNet


class EEGClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = ShallowFBCSPNet(n_chans=22, n_outputs=4, n_times=500, final_conv_length="auto")

    def forward(self, x):
        return self.net(x)


def example_inputs():
    return torch.randn(8, 22, 500)
