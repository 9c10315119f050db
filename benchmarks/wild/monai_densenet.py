"""MONAI DenseNet121 (2-d classifier), module-level."""
from monai.networks.nets import DenseNet121

model = DenseNet121(spatial_dims=2, in_channels=1, out_channels=4)
