"""An LSTMCell unrolled by hand over 50 time steps (seq2one classifier)."""
import torch
import torch.nn as nn


class LoopLSTM(nn.Module):
    def __init__(self, n_in=16, hidden=64, steps=50, classes=5):
        super().__init__()
        self.steps = steps
        self.cell = nn.LSTMCell(n_in, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):  # x: (batch, steps, n_in)
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        c = torch.zeros_like(h)
        for t in range(self.steps):
            h, c = self.cell(x[:, t], (h, c))
        return self.head(h)


def example_inputs():
    return torch.randn(8, 50, 16)
