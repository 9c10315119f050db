"""Only a factory function: the model is built by make_model() with keyword defaults."""
import torch.nn as nn


def make_model(in_dim=32, hidden=256, depth=12, out_dim=1):
    layers = [nn.Linear(in_dim, hidden), nn.SiLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.SiLU()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)
