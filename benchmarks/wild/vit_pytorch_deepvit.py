"""DeepViT (re-attention) from vit-pytorch in a wrapper module with example inputs."""
import torch
import torch.nn as nn
from vit_pytorch.deepvit import DeepViT


class Net(nn.Module):
    def __init__(self, depth=12):
        super().__init__()
        self.backbone = DeepViT(image_size=32, patch_size=4, num_classes=10, dim=128, depth=depth, heads=8,
                                mlp_dim=256, dropout=0.1, emb_dropout=0.1)

    def forward(self, x):
        return self.backbone(x)


def example_inputs():
    return torch.randn(8, 3, 32, 32)
