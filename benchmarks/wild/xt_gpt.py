"""A small GPT from x-transformers (README: TransformerWrapper + Decoder), built by a factory."""
from x_transformers import Decoder, TransformerWrapper


def build():
    return TransformerWrapper(num_tokens=512, max_seq_len=128,
                              attn_layers=Decoder(dim=128, depth=6, heads=4))
