"""torchvision ResNet-18 with a replaced classifier (the fine-tuning tutorial), module-level."""
import torch.nn as nn
import torchvision

model = torchvision.models.resnet18(weights=None)
model.fc = nn.Linear(model.fc.in_features, 2)
