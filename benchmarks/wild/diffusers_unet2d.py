"""diffusers UNet2DModel (DDPM-style) as in the diffusers training tutorial, scaled down."""
import torch
import torch.nn as nn
from diffusers import UNet2DModel


class NoisePredictor(nn.Module):
    def __init__(self):
        super().__init__()
        self.unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(32, 64, 64),
                                down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))

    def forward(self, x, t):
        return self.unet(x, t).sample


def example_inputs():
    return torch.randn(4, 3, 32, 32), torch.randint(0, 1000, (4,))
