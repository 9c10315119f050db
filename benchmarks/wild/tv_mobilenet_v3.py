"""torchvision MobileNetV3-Small, from a factory."""
from torchvision.models import mobilenet_v3_small


def build():
    return mobilenet_v3_small(weights=None, num_classes=10)
