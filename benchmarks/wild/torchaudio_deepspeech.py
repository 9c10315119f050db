"""torchaudio DeepSpeech (3 FC + bidirectional RNN + FC), module-level."""
import torch
from torchaudio.models import DeepSpeech

model = DeepSpeech(n_feature=40, n_hidden=256, n_class=29)


def example_inputs():
    return torch.randn(4, 1, 50, 40)
