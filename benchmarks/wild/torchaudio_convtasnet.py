"""torchaudio ConvTasNet source separation, small config, from a factory."""
import torch
from torchaudio.models import ConvTasNet


def build():
    return ConvTasNet(num_sources=2, enc_kernel_size=16, enc_num_feats=128, msk_kernel_size=3, msk_num_feats=64,
                      msk_num_hidden_feats=128, msk_num_layers=4, msk_num_stacks=2)


def example_inputs():
    return torch.randn(2, 1, 4000)
