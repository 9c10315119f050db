from __future__ import annotations

from typing import Iterable

from ..ir.verdict import VANISHING
from . import gradient_advice as adv
from .base import Example, Rule, RuleContext
from .finding import Finding


class VanishingGradientPredicted(Rule):
    code = "GL201"
    name = "vanishing-gradient-predicted"
    severity = "error"
    requires = "estimate"
    summary = "The estimate predicts the first layer's gradient below the vanishing threshold (1e-3 of the last layer's)."
    what = """
        From the architecture and the weights at initialization (no data, no training), gradlint
        predicts each weight layer's `grad_ratio`: the RMS of its weight gradient relative to the
        last weight layer's, with the contract's loss (a random Gaussian error signal on every
        output). It propagates forward second moments and backward gains through the graph, one
        handler per op (mean-field theory: Poole et al. 2016, Schoenholz et al. 2017). When the
        first non-embedding layer's predicted ratio is below `vanishing-threshold` (1e-3, as
        AUTOTRAINER uses), this rule reports it.

        The finding points at the layer where the prediction crosses the threshold, walking from
        the output towards the input — the first layer that is already too weak — and says by how
        much the first layer falls short and why: the log-attenuation split into its causes
        (activation derivatives, weight scale from the init, normalization, skip connections,
        pooling...), e.g. "70% of the decay comes from sigmoid derivatives".
    """
    why = """
        Layers whose weight gradient is a thousandth of the output layer's barely move in the first
        steps: with one learning rate for all layers the early layers stay at their random init
        while the head fits on random features, or the learning rate that lets them move makes
        the last layers diverge. Predicting it before training saves the run.
    """
    fix = """
        Follow the dominant cause in the message. Activation derivatives (sigmoid, tanh): use
        ReLU/GELU/SiLU in hidden layers, or BatchNorm before each activation, or residual
        connections. Weight scale: initialize for the activation (`kaiming_normal_` for ReLU,
        Xavier with `calculate_gain` for tanh); PyTorch's default (sigma_w^2 = 1/3) shrinks the
        gradient every layer. Recurrence: LSTM/GRU with forget bias 1, orthogonal W_hh, shorter
        sequences.
        `gradlint --show-fixes` estimates these changes on the model itself and ranks them by their
        predicted effect; `gradlint --fix` applies the best one that changes only the initial weights.
    """
    references = [
        "Poole et al. 2016, Exponential expressivity in deep neural networks through transient chaos",
        "Schoenholz et al. 2017, Deep Information Propagation",
        "Glorot & Bengio 2010; He et al. 2015 (initialization)",
        "AUTOTRAINER (Zhang et al., ICSE 2021): vanishing when the first/last gradient ratio < 1e-3",
    ]
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=64):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.act = nn.Sigmoid()

                def forward(self, x):
                    return self.act(self.fc(x))


            class DeepSigmoidMLP(nn.Module):
                def __init__(self, depth=12, width=64):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))


            def example_inputs():
                return (torch.randn(32, 64),)
            """,
            line=8,
            note="Twelve sigmoid layers with PyTorch's default init: the gradient loses ~0.15x per layer in RMS "
                 "and crosses 1e-3 four layers before the output, at the block's `nn.Linear`.",
        ),
        Example(
            """
            import torch.nn as nn


            class DefaultReLU(nn.Module):
                def __init__(self, depth=20, width=128):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    self.act = nn.ReLU()

                def forward(self, x):
                    for layer in self.layers:
                        x = self.act(layer(x))
                    return x
            """,
            line=7,
            note="ReLU is not enough: PyTorch's default init (sigma_w^2 = 1/3) passes 1/6 of the squared "
                 "gradient per ReLU layer, so a plain 20-layer MLP vanishes.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class HeReLU(nn.Module):
                def __init__(self, depth=20, width=128):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    self.act = nn.ReLU()
                    for layer in self.layers:
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")

                def forward(self, x):
                    for layer in self.layers:
                        x = self.act(layer(x))
                    return x
            """,
            note="He initialization keeps sigma_w^2 * E[relu'^2] = 1: the gradient keeps its scale.",
        ),
        Example(
            """
            import torch.nn as nn


            class BatchNormSigmoid(nn.Module):
                def __init__(self, depth=12, width=64):
                    super().__init__()
                    layers = []
                    for _ in range(depth):
                        layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.Sigmoid()]
                    self.net = nn.Sequential(*layers)

                def forward(self, x):
                    return self.net(x)
            """,
            note="BatchNorm before each sigmoid removes the 0.5 offset and rescales: ~1.03x per layer.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        finding = adv.predicted_finding(self, ctx, VANISHING)
        if finding is not None:
            yield finding
