"""perceiver-pytorch Perceiver as an image classifier (channels-last input), wrapped."""
import torch
import torch.nn as nn
from perceiver_pytorch import Perceiver


class PerceiverNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.perceiver = Perceiver(input_channels=3, input_axis=2, num_freq_bands=6, max_freq=10.0, depth=4,
                                   num_latents=64, latent_dim=128, cross_heads=1, latent_heads=4, cross_dim_head=32,
                                   latent_dim_head=32, num_classes=10, attn_dropout=0.0, ff_dropout=0.0,
                                   weight_tie_layers=False)

    def forward(self, img):  # img: (batch, height, width, channels)
        return self.perceiver(img)


def example_inputs():
    return torch.randn(4, 32, 32, 3)
