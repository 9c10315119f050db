"""Weights held by custom modules that call F.conv2d / F.linear themselves (no nn.Conv2d)."""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class MyConv(nn.Module):
    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) * math.sqrt(2.0 / (cin * k * k)))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=1)


class MyLinear(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / math.sqrt(cin))

    def forward(self, x):
        return F.linear(x, self.weight)


class FunctionalNet(nn.Module):
    def __init__(self, depth=8, ch=32):
        super().__init__()
        self.stem = MyConv(3, ch)
        self.blocks = nn.ModuleList(MyConv(ch, ch) for _ in range(depth))
        self.fc = MyLinear(ch, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for b in self.blocks:
            x = F.relu(b(x))
        return self.fc(x.mean((2, 3)))


def example_inputs():
    return torch.randn(4, 3, 32, 32)
