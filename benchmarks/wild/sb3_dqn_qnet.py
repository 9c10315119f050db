"""The Q-network of stable-baselines3's DQN on CartPole, returned by a factory."""
from stable_baselines3 import DQN


def build():
    return DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [256, 256]}).q_net
