"""denoising-diffusion-pytorch: Unet inside GaussianDiffusion; forward(images) is the training loss."""
import torch
from denoising_diffusion_pytorch import GaussianDiffusion, Unet


def build():
    unet = Unet(dim=32, dim_mults=(1, 2, 4), flash_attn=False)
    return GaussianDiffusion(unet, image_size=32, timesteps=100)


def example_inputs():
    return torch.rand(4, 3, 32, 32)
