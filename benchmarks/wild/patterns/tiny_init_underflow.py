"""Depth-50 tanh MLP with tiny init (std 1e-3): the gradient underflows to exactly 0.0 in float32."""
import torch.nn as nn


class TinyInitTanh(nn.Module):
    def __init__(self, depth=50, width=64):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [nn.Linear(width, width), nn.Tanh()]
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1e-3)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.net(x)
