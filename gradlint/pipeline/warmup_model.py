"""A small model gradlint analyses in its own process before forking workers (``workers.warm_up``):
each op family the common models use, so the first-call costs (lazy imports inside torch,
compiled regular expressions, torch.fx's and the estimator's caches) are paid once, in the
parent, and not again in every worker. Not a user-facing example."""

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(width)
        self.act = nn.ReLU()

    def forward(self, x):
        return x + self.act(self.norm(self.conv(x)))


class WarmUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(Block(), Block())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Sigmoid(), nn.Linear(8, 8), nn.Tanh(),
                                 nn.GELU(), nn.Dropout(0.1), nn.Linear(8, 4))
        nn.init.kaiming_normal_(self.stem.weight)

    def forward(self, x):
        return torch.softmax(self.mlp(torch.flatten(self.pool(self.blocks(self.stem(x))), 1)), dim=-1)


def example_inputs():
    return (torch.randn(2, 3, 8, 8),)
