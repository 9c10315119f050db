"""MONAI BasicUNet (2-d) from a factory, with example inputs."""
import torch
from monai.networks.nets import BasicUNet


def build():
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=3, features=(16, 16, 32, 64, 128, 16))


def example_inputs():
    return torch.randn(4, 1, 64, 64)
