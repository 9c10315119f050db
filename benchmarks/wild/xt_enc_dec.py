"""XTransformer (encoder-decoder) from x-transformers: forward(src, tgt, mask) returns the loss."""
import torch
from x_transformers import XTransformer


def build():
    return XTransformer(dim=128, enc_num_tokens=256, enc_depth=3, enc_heads=4, enc_max_seq_len=64,
                        dec_num_tokens=256, dec_depth=3, dec_heads=4, dec_max_seq_len=64, tie_token_emb=True)


def example_inputs():
    src = torch.randint(0, 256, (4, 32))
    tgt = torch.randint(0, 256, (4, 32))
    mask = torch.ones_like(src).bool()
    return (src, tgt), {"mask": mask}
