"""A 20-layer sigmoid MLP with PyTorch's default init: the textbook vanishing gradient.

    gradlint examples/deep_sigmoid_mlp.py
"""

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.fc(x))


class DeepSigmoidMLP(nn.Module):
    def __init__(self, depth: int = 20, width: int = 64, classes: int = 10):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth - 1)])
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.blocks(x))


def example_inputs():
    return (torch.randn(32, 64),)
