"""Image classifier on vit-pytorch's ViT, wrapped in our own module (README config, scaled down)."""
import torch.nn as nn
from vit_pytorch import ViT


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.vit = ViT(image_size=64, patch_size=8, num_classes=10, dim=128, depth=6, heads=8,
                       mlp_dim=256, dropout=0.1, emb_dropout=0.1)

    def forward(self, img):
        return self.vit(img)
