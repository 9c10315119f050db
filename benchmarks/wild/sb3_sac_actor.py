"""The SAC actor (squashed Gaussian policy) of stable-baselines3 on Pendulum, wrapped."""
import torch.nn as nn
from stable_baselines3 import SAC


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.actor = SAC("MlpPolicy", "Pendulum-v1").actor

    def forward(self, obs):
        return self.actor(obs, deterministic=True)
