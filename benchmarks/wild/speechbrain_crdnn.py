"""speechbrain CRDNN (conv + recurrent + DNN) acoustic model, from a factory."""
import torch
from speechbrain.lobes.models.CRDNN import CRDNN


def build():
    return CRDNN(input_shape=[None, None, 40], cnn_blocks=2, cnn_channels=(32, 64), rnn_layers=2,
                 rnn_neurons=128, dnn_blocks=2, dnn_neurons=128, time_pooling=True)


def example_inputs():
    return torch.randn(4, 60, 40)
