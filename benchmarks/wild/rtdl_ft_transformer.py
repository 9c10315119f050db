"""rtdl-revisiting-models FT-Transformer on numeric + categorical features, wrapped."""
import torch
import torch.nn as nn
from rtdl_revisiting_models import FTTransformer


class TabularModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = FTTransformer(n_cont_features=10, cat_cardinalities=[3, 5], d_out=1,
                                 **FTTransformer.get_default_kwargs(n_blocks=3))

    def forward(self, x_cont, x_cat):
        return self.net(x_cont, x_cat)


def example_inputs():
    return torch.randn(16, 10), torch.stack([torch.randint(0, 3, (16,)), torch.randint(0, 5, (16,))], 1)
