"""A masked autoregressive flow from nflows; the module to lint computes the negative log-likelihood."""
import torch
import torch.nn as nn
from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
from nflows.transforms.base import CompositeTransform
from nflows.transforms.permutations import ReversePermutation


class MAF(nn.Module):
    def __init__(self, features=8, layers=5, hidden=64):
        super().__init__()
        transforms = []
        for _ in range(layers):
            transforms += [ReversePermutation(features=features),
                           MaskedAffineAutoregressiveTransform(features=features, hidden_features=hidden)]
        self.flow = Flow(CompositeTransform(transforms), StandardNormal(shape=[features]))

    def forward(self, x):
        return -self.flow.log_prob(inputs=x)
