"""PyG's ready-made GAT (torch_geometric.nn.models.GAT), 3 layers, from a factory."""
import torch
from torch_geometric.nn.models import GAT


def build():
    return GAT(in_channels=64, hidden_channels=32, num_layers=3, out_channels=7, heads=4)


def example_inputs():
    return torch.randn(200, 64), torch.randint(0, 200, (2, 1000))
