"""A plain 30-layer ReLU MLP with He (Kaiming) init: healthy by construction."""
import torch.nn as nn


class DeepReLUMLP(nn.Module):
    def __init__(self, depth=30, width=256, in_features=128, classes=10):
        super().__init__()
        layers = [nn.Linear(in_features, width), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.net(x)
