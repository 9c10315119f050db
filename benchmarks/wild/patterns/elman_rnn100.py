"""A vanilla tanh RNN (nn.RNN) read out at the last of 100 steps: long-range gradients vanish."""
import torch
import torch.nn as nn


class ElmanClassifier(nn.Module):
    def __init__(self, n_in=8, hidden=64, classes=2):
        super().__init__()
        self.rnn = nn.RNN(n_in, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def example_inputs():
    return torch.randn(8, 100, 8)
