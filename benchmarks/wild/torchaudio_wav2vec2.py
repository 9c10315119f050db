"""A small wav2vec 2.0 model built from torchaudio's wav2vec2_model() with a custom config."""
import torch
import torch.nn as nn
from torchaudio.models import wav2vec2_model


class SmallWav2Vec2(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = wav2vec2_model(
            extractor_mode="group_norm", extractor_conv_layer_config=[(64, 10, 5)] + [(64, 3, 2)] * 4,
            extractor_conv_bias=False, encoder_embed_dim=128, encoder_projection_dropout=0.1,
            encoder_pos_conv_kernel=32, encoder_pos_conv_groups=4, encoder_num_layers=4, encoder_num_heads=4,
            encoder_attention_dropout=0.1, encoder_ff_interm_features=256, encoder_ff_interm_dropout=0.0,
            encoder_dropout=0.1, encoder_layer_norm_first=False, encoder_layer_drop=0.05, aux_num_out=32)

    def forward(self, wav):
        return self.model(wav)[0]


def example_inputs():
    return torch.randn(2, 8000)
