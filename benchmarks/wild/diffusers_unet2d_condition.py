"""diffusers UNet2DConditionModel (Stable-Diffusion-style, cross-attention), tiny config."""
import torch
from diffusers import UNet2DConditionModel


def build():
    return UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=64, attention_head_dim=8, norm_num_groups=16)


def example_inputs():
    return (torch.randn(2, 4, 16, 16), torch.tensor([10, 500])), {"encoder_hidden_states": torch.randn(2, 8, 64)}
