"""linear-attention-transformer LM, module-level (README usage)."""
import torch
from linear_attention_transformer import LinearAttentionTransformerLM

model = LinearAttentionTransformerLM(num_tokens=512, dim=128, heads=4, depth=6, max_seq_len=128, causal=True)

if __name__ == "__main__":
    x = torch.randint(0, 512, (1, 128))
    print(model(x).shape)
