"""Tokens-to-Token ViT from vit-pytorch; a CLI-configurable training script."""
import torch
import torch.nn as nn
from vit_pytorch.t2t import T2TViT


class T2TClassifier(nn.Module):
    def __init__(self, dim=128, depth=4, num_classes=10):
        super().__init__()
        self.model = T2TViT(dim=dim, image_size=64, depth=depth, heads=4, mlp_dim=256, num_classes=num_classes,
                            t2t_layers=((7, 4), (3, 2), (3, 2)))

    def forward(self, x):
        return self.model(x)


def example_inputs():
    return torch.randn(8, 3, 64, 64)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    a = p.parse_args()
    net = T2TClassifier()
    opt = torch.optim.AdamW(net.parameters(), 3e-4)
    for _ in range(a.epochs):
        loss = nn.functional.cross_entropy(net(example_inputs()), torch.randint(0, 10, (8,)))
        opt.zero_grad(); loss.backward(); opt.step()
