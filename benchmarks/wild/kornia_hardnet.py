"""kornia's HardNet patch descriptor (random init), module-level."""
import kornia.feature as KF
import torch

descriptor = KF.HardNet(pretrained=False)


def example_inputs():
    return torch.randn(16, 1, 32, 32)
