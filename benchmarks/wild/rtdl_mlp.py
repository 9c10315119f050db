"""rtdl-revisiting-models MLP for tabular data (Gorishniy et al. 2021), from a factory."""
from rtdl_revisiting_models import MLP


def build():
    return MLP(d_in=24, d_out=1, n_blocks=4, d_block=256, dropout=0.1)
