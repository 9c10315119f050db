"""timm ConvNeXt-Atto with drop path, wrapped with a custom head."""
import timm
import torch.nn as nn


class ConvNeXtClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = timm.create_model("convnext_atto", pretrained=False, num_classes=0, drop_path_rate=0.1)
        self.head = nn.Linear(self.backbone.num_features, 5)

    def forward(self, x):
        return self.head(self.backbone(x))
