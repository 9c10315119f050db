"""diffusers AutoencoderKL (the latent-diffusion VAE), small config, module-level."""
import torch
from diffusers import AutoencoderKL

vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
                    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=16)


def example_inputs():
    return torch.randn(2, 3, 64, 64)
