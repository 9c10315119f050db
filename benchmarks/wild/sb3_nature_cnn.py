"""stable-baselines3's NatureCNN features extractor for 84x84x4 Atari frames, plus a value head."""
import numpy as np
import torch
import torch.nn as nn
from gymnasium import spaces
from stable_baselines3.common.torch_layers import NatureCNN


class AtariValue(nn.Module):
    def __init__(self):
        super().__init__()
        space = spaces.Box(low=0, high=255, shape=(4, 84, 84), dtype=np.uint8)
        self.features = NatureCNN(space, features_dim=512)
        self.value = nn.Linear(512, 1)

    def forward(self, obs):
        return self.value(self.features(obs))


def example_inputs():
    return torch.randint(0, 256, (8, 4, 84, 84)).float() / 255.0
