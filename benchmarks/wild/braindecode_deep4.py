"""braindecode Deep4Net, module-level."""
import torch
from braindecode.models import Deep4Net

model = Deep4Net(n_chans=22, n_outputs=4, n_times=1000, final_conv_length="auto")


def example_inputs():
    return torch.randn(4, 22, 1000)
