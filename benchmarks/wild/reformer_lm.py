"""lucidrains' reformer-pytorch ReformerLM (LSH attention, reversible layers), from a factory."""
from reformer_pytorch import ReformerLM


def build():
    return ReformerLM(num_tokens=512, dim=128, depth=4, max_seq_len=256, heads=4, lsh_dropout=0.1, causal=True,
                      bucket_size=16)


def example_inputs():
    import torch
    return torch.randint(0, 512, (2, 256))
