"""The PyG README's GCN: forward takes a Data object (x, edge_index); Cora-sized features."""
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv


class GCN(torch.nn.Module):
    def __init__(self, in_channels=1433, hidden=16, classes=7):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, classes)

    def forward(self, data):
        x, edge_index = data.x, data.edge_index
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.conv2(x, edge_index), dim=1)


def example_inputs():
    g = torch.Generator().manual_seed(0)
    return (Data(x=torch.randn(100, 1433, generator=g), edge_index=torch.randint(0, 100, (2, 400), generator=g)),)
