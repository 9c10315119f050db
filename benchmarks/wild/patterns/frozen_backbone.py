"""Fine-tuning setup: a frozen torchvision ResNet-18 backbone and a trainable 2-layer head."""
import torch.nn as nn
import torchvision


class FineTune(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.backbone = torchvision.models.resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, classes))

    def forward(self, x):
        return self.head(self.backbone(x))


def example_inputs():
    import torch
    return torch.randn(4, 3, 64, 64)
