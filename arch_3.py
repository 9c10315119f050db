import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(12, 8)
        self.head = nn.Linear(8, 5)
        self.b0 = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)), nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.ReLU()))
        self.b1 = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.Tanh()))

    def forward(self, x):
        x = self.stem(x)
        x = self.b0(x)
        x = x + self.b1(x)
        return self.head(x)


def example_inputs():
    return (torch.randn(4, 12),)
