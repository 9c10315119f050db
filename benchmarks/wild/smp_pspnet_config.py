"""PSPNet configured by a dataclass, the way project code passes configs around."""
from dataclasses import dataclass

import torch.nn as nn
import segmentation_models_pytorch as smp


@dataclass
class SegConfig:
    encoder: str = "resnet18"
    classes: int = 3
    in_channels: int = 3


class SegModel(nn.Module):
    def __init__(self, cfg: SegConfig):
        super().__init__()
        self.net = smp.PSPNet(encoder_name=cfg.encoder, encoder_weights=None, in_channels=cfg.in_channels,
                              classes=cfg.classes)

    def forward(self, x):
        return self.net(x)
