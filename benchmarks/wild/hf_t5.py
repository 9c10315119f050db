"""Hugging Face T5 (encoder-decoder) from a tiny T5Config; inputs as a dict of keyword tensors."""
import torch
from transformers import T5Config, T5ForConditionalGeneration

config = T5Config(vocab_size=1000, d_model=128, d_kv=32, d_ff=256, num_layers=3, num_heads=4,
                  decoder_start_token_id=0)
model = T5ForConditionalGeneration(config)


def example_inputs():
    return {"input_ids": torch.randint(0, 1000, (4, 24)), "decoder_input_ids": torch.randint(0, 1000, (4, 12))}
