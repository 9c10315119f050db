"""Cadene's pretrainedmodels: BN-Inception without weights (pretrained=None), in a wrapper."""
import torch.nn as nn
import pretrainedmodels


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = pretrainedmodels.__dict__["bninception"](num_classes=1000, pretrained=None)

    def forward(self, x):
        return self.model(x)
