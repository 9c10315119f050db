"""tianshou's MLP Q-network (utils.net.common.Net) for a 4-d observation, 2 actions, module-level."""
import torch
from tianshou.utils.net.common import Net

net = Net(state_shape=4, action_shape=2, hidden_sizes=[128, 128, 128])


def example_inputs():
    return torch.randn(8, 4)
