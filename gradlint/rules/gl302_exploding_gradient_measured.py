from __future__ import annotations

from typing import Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding
from .measured import threshold_text


class ExplodingGradientMeasured(Rule):
    code = "GL302"
    name = "exploding-gradient-measured"
    severity = "error"
    summary = "Measured on one batch: the first layer's gradient is many thousand times the last layer's."
    what = """
        With `--verify`, compares the RMS of dL/dW of the first non-embedding weight layer with
        that of the last weight layer after one forward and backward pass at initialization (see
        GL301 for the pass). The rule fires when the ratio exceeds `exploding-threshold` (default
        **1e4**, configurable under `[tool.gradlint]`), the threshold the static estimate uses.

        Where the threshold comes from: AUTOTRAINER (ICSE 2021) calls a one-batch ratio above 70
        exploding, and GradientFlow flags mean gradient norms above 100, but standard
        BatchNorm networks (ResNet-50/101, Inception-v3) measure 1e2-6e3 at initialization and
        train fine: the gradient explosion of deep BatchNorm nets at init (Yang et al. 2019) is
        mild and self-correcting. The default sits above them, so the rule reports growth that
        real architectures do not show. The finding points at the line that constructs the first
        weight layer.
    """
    why = """
        When the early layers' gradients are orders of magnitude larger than the late layers',
        one learning rate cannot suit both: a step small enough for the first layers leaves the
        last ones frozen, and a step sized for the last ones throws the first ones far off,
        often to overflow (NaN/inf) within a few steps. Typical causes are saturating
        activations initialized in their chaotic regime (tanh with too large a gain) and very
        deep stacks whose backward gain per layer exceeds 1.
    """
    fix = """
        Initialize for the activation (Xavier with gain 5/3 for tanh, He for ReLU) rather than
        with a larger scale; add normalization or residual connections; clip gradients if the
        architecture must stay as it is.
    """
    references = [
        "Pascanu, Mikolov & Bengio 2013, On the difficulty of training recurrent neural networks",
        "Poole et al. 2016, Exponential expressivity in deep neural networks through transient chaos",
        "Yang et al. 2019, A Mean Field Theory of Batch Normalization (gradient explosion at init)",
        "AUTOTRAINER (Zhang et al., ICSE 2021): exploding when the one-batch ratio > 70 (gradlint's default is 1e4)",
    ]
    requires = "measurement"
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class ChaoticTanhMLP(nn.Module):
                def __init__(self, depth=12, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    for layer in self.layers:
                        nn.init.normal_(layer.weight, std=20.0 / width ** 0.5)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.tanh(layer(x))
                    return x


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            line=8,
            note="tanh with a weight gain of 20: each layer multiplies the backward signal by ~3.",
            verify=True,
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class XavierTanhMLP(nn.Module):
                def __init__(self, depth=12, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    for layer in self.layers:
                        nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain("tanh"))

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.tanh(layer(x))
                    return x


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            note="Xavier init with tanh's gain keeps each layer's backward gain near 1.",
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        m = ctx.measurement
        threshold = ctx.thresholds.exploding
        if m.verdict != "exploding" or m.first_layer is None or m.attenuation is None or m.attenuation <= threshold:
            return
        first, last = m.first_layer, m.layers[-1]
        msg = (f"measured on one batch: {first.module} receives {m.attenuation:.1e} times the gradient RMS of "
               f"{last.module} (exploding above {threshold_text(threshold)})")
        yield self.finding(msg, first.location)
