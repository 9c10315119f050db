"""timm ViT-Tiny at 64x64 input (img_size override), from a factory."""
import timm
import torch


def build():
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, num_classes=10)


def example_inputs():
    return torch.randn(8, 3, 64, 64)
