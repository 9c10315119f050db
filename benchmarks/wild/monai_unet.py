"""MONAI's residual UNet (2-d), as in the MONAI segmentation tutorials, wrapped."""
import torch.nn as nn
from monai.networks.nets import UNet


class SegNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.unet = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                         strides=(2, 2, 2, 2), num_res_units=2, norm="batch")

    def forward(self, x):
        return self.unet(x)
