"""A tiny Llama (RMSNorm, SwiGLU, RoPE) from transformers' LlamaConfig, wrapped in our class."""
import torch.nn as nn
from transformers import LlamaConfig, LlamaForCausalLM


class TinyLlama(nn.Module):
    def __init__(self):
        super().__init__()
        cfg = LlamaConfig(vocab_size=1000, hidden_size=128, intermediate_size=344, num_hidden_layers=6,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
        self.lm = LlamaForCausalLM(cfg)

    def forward(self, input_ids):
        return self.lm(input_ids=input_ids).logits
