"""ResNeSt-50 (split attention) from the resnest package, without weights, in a wrapper."""
import torch.nn as nn
from resnest.torch import resnest50


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = resnest50(pretrained=False)

    def forward(self, x):
        return self.net(x)
