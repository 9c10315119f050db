"""A MelGAN/HiFi-GAN-like 1-d conv vocoder stack with weight normalization (parametrizations API)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm


class ResStack(nn.Module):
    def __init__(self, ch, dilations=(1, 3, 9)):
        super().__init__()
        self.convs = nn.ModuleList(weight_norm(nn.Conv1d(ch, ch, 3, dilation=d, padding=d)) for d in dilations)

    def forward(self, x):
        for c in self.convs:
            x = x + c(F.leaky_relu(x, 0.2))
        return x


class Vocoder(nn.Module):
    def __init__(self, n_mels=80, ch=128, ups=(8, 8, 2, 2)):
        super().__init__()
        self.pre = weight_norm(nn.Conv1d(n_mels, ch, 7, padding=3))
        blocks = []
        for r in ups:
            blocks += [nn.LeakyReLU(0.2), weight_norm(nn.ConvTranspose1d(ch, ch // 2, 2 * r, r, padding=r // 2)),
                       ResStack(ch // 2)]
            ch //= 2
        self.ups = nn.Sequential(*blocks)
        self.post = weight_norm(nn.Conv1d(ch, 1, 7, padding=3))

    def forward(self, mel):
        return torch.tanh(self.post(F.leaky_relu(self.ups(self.pre(mel)), 0.2)))


def example_inputs():
    return torch.randn(2, 80, 16)
