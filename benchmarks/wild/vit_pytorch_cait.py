"""CaiT from vit-pytorch as a module-level instance, the way the README writes it."""
import torch
from vit_pytorch.cait import CaiT

model = CaiT(
    image_size=64, patch_size=8, num_classes=10, dim=128, depth=6, cls_depth=2, heads=8, mlp_dim=256,
    dropout=0.1, emb_dropout=0.1, layer_dropout=0.05,
)

if __name__ == "__main__":
    img = torch.randn(1, 3, 64, 64)
    print(model(img).shape)
