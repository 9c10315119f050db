"""A small VQ-VAE: our conv encoder/decoder around vector-quantize-pytorch's VectorQuantize."""
import torch
import torch.nn as nn
from vector_quantize_pytorch import VectorQuantize


class VQVAE(nn.Module):
    def __init__(self, dim=64, codebook_size=256):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, dim, 4, 2, 1), nn.ReLU(), nn.Conv2d(dim, dim, 4, 2, 1))
        self.vq = VectorQuantize(dim=dim, codebook_size=codebook_size, decay=0.8, commitment_weight=1.0,
                                 accept_image_fmap=True)
        self.dec = nn.Sequential(nn.ConvTranspose2d(dim, dim, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(dim, 3, 4, 2, 1))

    def forward(self, x):
        z, _, commit = self.vq(self.enc(x))
        return self.dec(z), commit


def example_inputs():
    return torch.randn(4, 3, 32, 32)
