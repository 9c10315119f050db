"""A model with a torch.jit.script-ed block inside (as people do for a fused activation block)."""
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(x))))


class JitNet(nn.Module):
    def __init__(self, d=64, depth=6):
        super().__init__()
        self.inp = nn.Linear(32, d)
        self.blocks = nn.Sequential(*[torch.jit.script(Block(d)) for _ in range(depth)])
        self.out = nn.Linear(d, 10)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))
