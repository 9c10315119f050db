from __future__ import annotations

from typing import Iterable

from ..ir.verdict import EXPLODING
from . import gradient_advice as adv
from .base import Example, Rule, RuleContext
from .finding import Finding


class ExplodingGradientPredicted(Rule):
    code = "GL202"
    name = "exploding-gradient-predicted"
    severity = "warning"
    requires = "estimate"
    summary = "The estimate predicts the first layer's gradient above the exploding threshold (1e4 times the last layer's)."
    what = """
        Uses the same prediction as GL201 (`grad_ratio` of every weight layer at initialization,
        from the architecture and the weights) and reports when the first non-embedding layer's
        ratio exceeds `exploding-threshold` (1e4 by default). The finding points at the layer where
        the prediction crosses the threshold, walking from the output towards the input, and splits
        the growth into its causes.

        At initialization this is mostly a deep-BatchNorm effect: in train mode each
        Linear/Conv -> BatchNorm -> ReLU layer multiplies the squared gradient by
        E[relu'^2] / Var(relu) = pi/(pi-1) ~ 1.47 (more at small batches), so a plain 50-layer
        BN+ReLU stack explodes (Yang et al. 2019). Unnormalized residual networks whose branches
        keep their scale grow too (the variance doubles every block). Standard BN architectures
        with skip connections (ResNet-50/101, Inception-v3) measure 1e2-6e3 and train fine: the
        default threshold sits above them.
    """
    why = """
        Early layers whose gradient is 10^4 times the last layer's take steps that are far too large
        for a learning rate chosen for the rest of the network: the first updates blow the early
        weights up (and with them the activations), or force a learning rate at which the last
        layers do not learn.
    """
    fix = """
        Deep BatchNorm stacks: add residual connections and zero-initialize the last BatchNorm's
        gamma in each block (He et al. 2019, "Bag of tricks"), or shorten the plain stretches.
        Residual branches that add up: scale each branch, zero-init its last layer
        (Fixup/SkipInit), or add normalization. Init too large for the activation: use Kaiming or
        Xavier with `nn.init.calculate_gain`.
        `gradlint --show-fixes` estimates these changes on the model itself and ranks them by their
        predicted effect; `gradlint --fix` applies the best one that changes only the initial weights.
    """
    references = [
        "Yang et al. 2019, A Mean Field Theory of Batch Normalization",
        "Zhang, Dauphin & Ma 2019, Fixup Initialization",
        "De & Smith 2020, Batch Normalization Biases Residual Blocks Towards the Identity Function (SkipInit)",
    ]
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class PlainBNStack(nn.Module):
                def __init__(self, depth=60, width=128):
                    super().__init__()
                    layers = []
                    for _ in range(depth):
                        layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()]
                    self.body = nn.Sequential(*layers)
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.body(x))


            def example_inputs():
                return (torch.randn(16, 128),)
            """,
            line=10,
            note="Sixty Linear-BatchNorm-ReLU layers without a skip: ~1.56x per layer in squared gradient at batch 16.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.bn = nn.BatchNorm1d(width)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return x + self.act(self.bn(self.fc(x)))


            class ResidualBNStack(nn.Module):
                def __init__(self, depth=60, width=128):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))


            def example_inputs():
                return (torch.randn(16, 128),)
            """,
            note="The same depth with skip connections: the identity path keeps the gradient's scale.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        finding = adv.predicted_finding(self, ctx, EXPLODING)
        if finding is not None:
            yield finding
