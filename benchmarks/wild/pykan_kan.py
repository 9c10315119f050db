"""pykan's KAN (Kolmogorov-Arnold network), README config."""
import torch
from kan import KAN


def build():
    return KAN(width=[4, 8, 8, 1], grid=5, k=3, seed=0, auto_save=False)


def example_inputs():
    return torch.rand(16, 4) * 2 - 1
