"""ViTransformerWrapper from x-transformers as a module-level model."""
import torch
from x_transformers import Encoder, ViTransformerWrapper

model = ViTransformerWrapper(image_size=32, patch_size=4, num_classes=10,
                             attn_layers=Encoder(dim=128, depth=6, heads=4))
img = torch.randn(1, 3, 32, 32)
