"""Graph classification with PyG's GIN + global mean pooling."""
import torch
import torch.nn as nn
from torch_geometric.nn import global_mean_pool
from torch_geometric.nn.models import GIN


class GraphClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gin = GIN(in_channels=32, hidden_channels=64, num_layers=5, norm="batch_norm")
        self.head = nn.Linear(64, 2)

    def forward(self, x, edge_index, batch):
        return self.head(global_mean_pool(self.gin(x, edge_index), batch))


def example_inputs():
    batch = torch.arange(8).repeat_interleave(25)
    edges = torch.randint(0, 25, (2, 60 * 8)) + torch.arange(8).repeat_interleave(60) * 25
    return torch.randn(200, 32), edges, batch
