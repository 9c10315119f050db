"""BiT-style ResNet with weight-standardized convs and GroupNorm."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class StdConv2d(nn.Conv2d):
    def forward(self, x):
        w = self.weight
        m, v = w.mean(dim=(1, 2, 3), keepdim=True), w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return F.conv2d(x, (w - m) / torch.sqrt(v + 1e-10), self.bias, self.stride, self.padding)


class PreActBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gn1, self.conv1 = nn.GroupNorm(8, c), StdConv2d(c, c, 3, padding=1, bias=False)
        self.gn2, self.conv2 = nn.GroupNorm(8, c), StdConv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.gn1(x)))
        return x + self.conv2(F.relu(self.gn2(y)))


class BiTNet(nn.Module):
    def __init__(self, c=64, blocks=8, classes=10):
        super().__init__()
        self.stem = StdConv2d(3, c, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*[PreActBlock(c) for _ in range(blocks)])
        self.norm = nn.GroupNorm(8, c)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.norm(self.blocks(self.stem(x))))
        return self.head(x.mean((2, 3)))


def example_inputs():
    return torch.randn(4, 3, 32, 32)
