"""The feature extractor of a gpytorch deep-kernel-learning model (the GP part has no gradient to lint)."""
import torch
import torch.nn as nn
import gpytorch


class DKLFeatures(nn.Module):
    def __init__(self, d_in=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                 nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 2))
        self.scale = gpytorch.utils.grid.ScaleToBounds(-1.0, 1.0)

    def forward(self, x):
        return self.scale(self.net(x))
