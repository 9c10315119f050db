"""MONAI UNETR (ViT encoder + conv decoder), 2-d, small."""
import torch
import torch.nn as nn
from monai.networks.nets import UNETR


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = UNETR(in_channels=1, out_channels=2, img_size=(64, 64), spatial_dims=2, feature_size=16,
                         hidden_size=192, mlp_dim=384, num_heads=4)

    def forward(self, x):
        return self.net(x)


def example_inputs():
    return torch.randn(2, 1, 64, 64)
