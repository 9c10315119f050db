"""braindecode EEGNet for 22-channel motor imagery, from a factory."""
import torch
from braindecode.models import EEGNet


def build():
    return EEGNet(n_chans=22, n_outputs=4, n_times=500)


def example_inputs():
    return torch.randn(8, 22, 500)
