"""A character LM trained with x-transformers' AutoregressiveWrapper (forward returns the loss)."""
import torch
import torch.nn as nn
from x_transformers import AutoregressiveWrapper, Decoder, TransformerWrapper


class CharLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = AutoregressiveWrapper(TransformerWrapper(
            num_tokens=256, max_seq_len=128, attn_layers=Decoder(dim=128, depth=8, heads=4)))

    def forward(self, seq):
        return self.model(seq)


if __name__ == "__main__":
    lm = CharLM()
    opt = torch.optim.Adam(lm.parameters(), 1e-4)
    for _ in range(100):
        loss = lm(torch.randint(0, 256, (4, 129)))
        loss.backward(); opt.step(); opt.zero_grad()
