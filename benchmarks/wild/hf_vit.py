"""transformers ViTForImageClassification from a small ViTConfig, with pixel_values example inputs."""
import torch
from transformers import ViTConfig, ViTForImageClassification


def build():
    cfg = ViTConfig(image_size=32, patch_size=4, hidden_size=128, num_hidden_layers=6, num_attention_heads=4,
                    intermediate_size=256, num_labels=10)
    return ViTForImageClassification(cfg)


def example_inputs():
    return {"pixel_values": torch.randn(8, 3, 32, 32)}
