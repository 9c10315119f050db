"""A 12-layer pre-LN transformer encoder classifier: deep, but healthy.

    gradlint examples/transformer_encoder.py
"""

import torch
import torch.nn as nn


class TextClassifier(nn.Module):
    def __init__(self, vocab: int = 1000, d_model: int = 64, heads: int = 4, layers: int = 12, classes: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 64, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, ids):
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]
        x = self.norm(self.encoder(x))
        return self.head(x.mean(dim=1))


def example_inputs():
    return (torch.randint(0, 1000, (8, 32)),)
