"""PyG GraphSAGE, module-level instance (notebook style)."""
import torch
from torch_geometric.nn.models import GraphSAGE

model = GraphSAGE(in_channels=128, hidden_channels=64, num_layers=4, out_channels=10)


def example_inputs():
    return torch.randn(300, 128), torch.randint(0, 300, (2, 1500))
