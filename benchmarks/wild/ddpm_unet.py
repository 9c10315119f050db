"""The denoiser alone: denoising-diffusion-pytorch's Unet predicting noise from (x_t, t)."""
import torch
import torch.nn as nn
from denoising_diffusion_pytorch import Unet


class Denoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.unet = Unet(dim=32, dim_mults=(1, 2, 2, 4))

    def forward(self, x, t):
        return self.unet(x, t)


def example_inputs():
    return torch.randn(4, 3, 32, 32), torch.randint(0, 1000, (4,))
