"""A BERT-like encoder from x-transformers, wrapped, with the README's recommended tweaks."""
import torch.nn as nn
from x_transformers import Encoder, TransformerWrapper


class MaskedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = TransformerWrapper(num_tokens=1000, max_seq_len=128,
                                      attn_layers=Encoder(dim=128, depth=6, heads=4, ff_glu=True,
                                                          rotary_pos_emb=True, use_rmsnorm=True))

    def forward(self, tokens):
        return self.net(tokens)
