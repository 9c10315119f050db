"""A small U-Net that normalizes with F.normalize (pixel norm) and nn.RMSNorm instead of BatchNorm."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class PixelNormConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return F.silu(F.normalize(self.conv(x), dim=1) * self.conv.out_channels ** 0.5)


class RMSConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.RMSNorm(cout)

    def forward(self, x):
        x = self.conv(x)
        return F.silu(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


class UNet(nn.Module):
    def __init__(self, ch=(32, 64, 128)):
        super().__init__()
        self.inc = PixelNormConv(3, ch[0])
        self.down1 = RMSConv(ch[0], ch[1])
        self.down2 = RMSConv(ch[1], ch[2])
        self.up2 = RMSConv(ch[2] + ch[1], ch[1])
        self.up1 = PixelNormConv(ch[1] + ch[0], ch[0])
        self.out = nn.Conv2d(ch[0], 3, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(F.avg_pool2d(x1, 2))
        x3 = self.down2(F.avg_pool2d(x2, 2))
        y = self.up2(torch.cat([F.interpolate(x3, scale_factor=2), x2], 1))
        y = self.up1(torch.cat([F.interpolate(y, scale_factor=2), x1], 1))
        return self.out(y)


def example_inputs():
    return torch.randn(4, 3, 32, 32)
