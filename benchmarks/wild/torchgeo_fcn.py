"""torchgeo's FCN baseline for 12-band Sentinel-2 segmentation, module-level."""
import torch
from torchgeo.models import FCN

model = FCN(in_channels=12, classes=5, num_filters=64)


def example_inputs():
    return torch.randn(4, 12, 64, 64)
