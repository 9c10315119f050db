"""tsai's InceptionTime time-series classifier, from a factory."""
import torch
from tsai.models.InceptionTime import InceptionTime


def build():
    return InceptionTime(c_in=3, c_out=5, seq_len=128)


def example_inputs():
    return torch.randn(8, 3, 128)
