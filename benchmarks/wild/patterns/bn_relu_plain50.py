"""A plain (no skip) stack of 50 Linear+BatchNorm+ReLU layers: exploding gradient at init (Yang et al. 2019)."""
import torch.nn as nn


class DeepBNStack(nn.Module):
    def __init__(self, depth=50, width=128):
        super().__init__()
        layers = [nn.Linear(64, width), nn.BatchNorm1d(width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()]
        layers.append(nn.Linear(width, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
