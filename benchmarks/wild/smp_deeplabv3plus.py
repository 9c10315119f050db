"""DeepLabV3+ from segmentation-models-pytorch, built by a factory."""
import segmentation_models_pytorch as smp


def build():
    return smp.DeepLabV3Plus(encoder_name="resnet18", encoder_weights=None, classes=4)
