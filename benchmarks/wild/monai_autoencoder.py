"""MONAI VarAutoEncoder (2-d), factory + example inputs."""
import torch
from monai.networks.nets import VarAutoEncoder


def build():
    return VarAutoEncoder(spatial_dims=2, in_shape=(1, 32, 32), out_channels=1, latent_size=16,
                          channels=(16, 32, 64), strides=(2, 2, 2))


def example_inputs():
    return torch.randn(4, 1, 32, 32)
