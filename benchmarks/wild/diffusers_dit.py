"""diffusers DiTTransformer2DModel (DiT), tiny config, built by a factory."""
import torch
from diffusers import DiTTransformer2DModel


def build():
    return DiTTransformer2DModel(num_attention_heads=4, attention_head_dim=32, in_channels=4, num_layers=4,
                                 sample_size=16, patch_size=2, num_embeds_ada_norm=1000)


def example_inputs():
    return (torch.randn(2, 4, 16, 16),), {"timestep": torch.tensor([1, 500]), "class_labels": torch.tensor([3, 7])}
