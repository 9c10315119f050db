"""1-d diffusion (Unet1D + GaussianDiffusion1D) on sequences, from denoising-diffusion-pytorch."""
import torch
from denoising_diffusion_pytorch import GaussianDiffusion1D, Unet1D

model = Unet1D(dim=32, dim_mults=(1, 2, 4), channels=32)
diffusion = GaussianDiffusion1D(model, seq_length=64, timesteps=100, objective="pred_v")


def build():
    return diffusion


def example_inputs():
    return torch.rand(4, 32, 64)
