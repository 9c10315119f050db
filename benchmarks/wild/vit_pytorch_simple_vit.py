"""SimpleViT (Beyer et al. 2022) from vit-pytorch, built by a factory."""
import torch
from vit_pytorch import SimpleViT


def build():
    return SimpleViT(image_size=64, patch_size=8, num_classes=10, dim=128, depth=6, heads=8, mlp_dim=256)


def example_inputs():
    return torch.randn(8, 3, 64, 64)
