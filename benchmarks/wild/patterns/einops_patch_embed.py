"""A small ViT whose patch embedding sits behind einops' Rearrange layer (the vit-pytorch idiom)."""
import torch
import torch.nn as nn
from einops.layers.torch import Rearrange


class TinyViT(nn.Module):
    def __init__(self, image=32, patch=4, dim=128, depth=6, heads=4, classes=10):
        super().__init__()
        n = (image // patch) ** 2
        self.to_patch = nn.Sequential(Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch, p2=patch),
                                      nn.LayerNorm(3 * patch * patch), nn.Linear(3 * patch * patch, dim), nn.LayerNorm(dim))
        self.pos = nn.Parameter(torch.randn(1, n, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def forward(self, img):
        x = self.to_patch(img) + self.pos
        return self.head(self.encoder(x).mean(1))


def example_inputs():
    return torch.randn(4, 3, 32, 32)
