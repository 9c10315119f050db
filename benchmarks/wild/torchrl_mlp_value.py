"""torchrl's MLP (tanh by default) as a PPO value network, in a wrapper."""
import torch.nn as nn
from torchrl.modules import MLP


class ValueNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = MLP(in_features=17, out_features=1, depth=6, num_cells=256)

    def forward(self, obs):
        return self.mlp(obs)
