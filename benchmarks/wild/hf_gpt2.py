"""Hugging Face GPT-2 from a small GPT2Config (random init), from a factory."""
from transformers import GPT2Config, GPT2LMHeadModel


def build():
    config = GPT2Config(vocab_size=1000, n_positions=128, n_embd=128, n_layer=6, n_head=4)
    return GPT2LMHeadModel(config)
