"""segmentation-models-pytorch Unet (ResNet-34 encoder), module-level as in the README (no weights)."""
import segmentation_models_pytorch as smp

model = smp.Unet(
    encoder_name="resnet34",
    encoder_weights=None,  # no download: random init
    in_channels=1,
    classes=3,
)
