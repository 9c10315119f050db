"""speechbrain ECAPA-TDNN speaker embedding model (random init), wrapped."""
import torch
import torch.nn as nn
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN


class SpeakerEmbedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.ecapa = ECAPA_TDNN(input_size=40, lin_neurons=96, channels=[128, 128, 128, 128, 384])

    def forward(self, feats):
        return self.ecapa(feats)


def example_inputs():
    return torch.randn(4, 100, 40)
