"""A 20-layer sigmoid MLP with default init: the textbook vanishing gradient."""
import torch.nn as nn


class SigmoidMLP(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Linear(784, 128), nn.Sigmoid()]
        for _ in range(18):
            layers += [nn.Linear(128, 128), nn.Sigmoid()]
        layers.append(nn.Linear(128, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
