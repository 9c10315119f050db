"""rtdl-revisiting-models ResNet for tabular data, module-level."""
from rtdl_revisiting_models import ResNet

model = ResNet(d_in=24, d_out=1, n_blocks=8, d_block=192, d_hidden=None, d_hidden_multiplier=2.0,
               dropout1=0.15, dropout2=0.0)
