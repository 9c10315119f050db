"""lucidrains' mlp-mixer-pytorch MLPMixer, module-level (README usage)."""
import torch
from mlp_mixer_pytorch import MLPMixer

model = MLPMixer(image_size=32, channels=3, patch_size=4, dim=128, depth=8, num_classes=10)
img = torch.randn(1, 3, 32, 32)
