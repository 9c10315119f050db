"""Cadene's pretrainedmodels: Xception, module-level."""
import pretrainedmodels

model = pretrainedmodels.xception(num_classes=1000, pretrained=None)
