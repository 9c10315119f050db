"""asteroid DPRNNTasNet (dual-path RNN separation), small config, from a factory."""
import torch
from asteroid.models import DPRNNTasNet


def build():
    return DPRNNTasNet(n_src=2, n_filters=64, kernel_size=16, bn_chan=64, hid_size=64, chunk_size=50, n_repeats=2)


def example_inputs():
    return torch.randn(2, 4000)
