"""MobileViT (XXS-like widths) from vit-pytorch, via a factory."""
from vit_pytorch.mobile_vit import MobileViT


def build():
    return MobileViT(image_size=(64, 64), dims=[64, 80, 96],
                     channels=[16, 16, 24, 24, 48, 48, 64, 64, 80, 80, 320], num_classes=10)
