"""torchaudio Conformer encoder: forward(input, lengths), with example inputs."""
import torch
from torchaudio.models import Conformer


def build():
    return Conformer(input_dim=80, num_heads=4, ffn_dim=256, num_layers=4, depthwise_conv_kernel_size=15)


def example_inputs():
    return torch.randn(4, 50, 80), torch.full((4,), 50)
