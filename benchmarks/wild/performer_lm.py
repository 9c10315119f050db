"""performer-pytorch PerformerLM (FAVOR+ attention), causal, from a factory."""
from performer_pytorch import PerformerLM


def build():
    return PerformerLM(num_tokens=512, max_seq_len=128, dim=128, depth=6, heads=4, causal=True,
                       nb_features=64, ff_glu=True)
