"""lukemelas' efficientnet-pytorch, EfficientNet-B0 from its name (no weights), via a factory."""
from efficientnet_pytorch import EfficientNet


def build():
    return EfficientNet.from_name("efficientnet-b0", num_classes=10)
