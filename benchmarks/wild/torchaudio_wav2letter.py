"""torchaudio Wav2Letter on MFCC features, wrapped in a CTC acoustic model."""
import torch.nn as nn
from torchaudio.models import Wav2Letter


class AcousticModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Wav2Letter(num_classes=29, input_type="mfcc", num_features=13)

    def forward(self, feats):
        return self.net(feats).log_softmax(1)
