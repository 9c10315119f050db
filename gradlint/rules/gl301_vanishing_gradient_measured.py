from __future__ import annotations

from typing import Iterable

from . import gradient_advice as adv
from .base import Example, Rule, RuleContext
from .finding import Finding
from .measured import threshold_text


class VanishingGradientMeasured(Rule):
    code = "GL301"
    name = "vanishing-gradient-measured"
    severity = "error"
    summary = "Measured on one batch: the first layer's gradient is a vanishing fraction of the last layer's."
    what = """
        With `--verify`, gradlint runs one forward and one backward pass at initialization (train
        mode, the model's example inputs, a loss whose gradient at every output unit is an
        independent standard Gaussian) and compares the RMS of dL/dW of the first non-embedding
        weight layer with that of the last weight layer. The rule fires when that ratio, the
        *measured attenuation*, is below `vanishing-threshold` (default **1e-3**, configurable
        under `[tool.gradlint]`), the same threshold the static estimate uses.

        The threshold is AUTOTRAINER's (Zhang et al., ICSE 2021): it flags a vanishing gradient
        when the first-layer/last-layer gradient ratio of one batch drops below 1e-3. AUTOTRAINER
        also asks the first layer's gradient norm to be below 1e-4; gradlint leaves out that
        absolute test because the random-projection loss fixes the output scale but not the
        number of outputs, so a ratio is the comparable quantity (GL305 looks at absolute
        magnitudes). The finding points at the line that constructs the first weight layer, and
        says where, going back from the output, the gradient falls below the threshold.

        Gradients that are exactly zero because a zero-initialized weight sits downstream (a
        zero-init head, ReZero/SkipInit gates, LayerScale) are a *structural zero*, not a
        vanishing gradient: the verdict says `structural-zero` and this rule stays silent.
    """
    why = """
        The first layers learn at a rate proportional to their gradient. When it is a thousandth
        of the last layer's or less, the first layers barely move while the last ones fit the
        data: training is slow, stalls early, or ends with early layers still near their random
        initialization.
    """
    fix = """
        Shorten the chain that multiplies the gradient: residual connections around blocks,
        normalization (BatchNorm/LayerNorm) inside them, ReLU-family activations instead of
        sigmoid/tanh in hidden layers, and an initialization matched to the activation (He for
        ReLU, Xavier for tanh).
    """
    references = [
        "AUTOTRAINER (Zhang et al., ICSE 2021): vanishing when the one-batch first/last gradient ratio < 1e-3",
        "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural networks",
        "He et al. 2016, Deep Residual Learning for Image Recognition",
    ]
    requires = "measurement"
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.act = nn.Sigmoid()

                def forward(self, x):
                    return self.act(self.fc(x))


            class DeepSigmoidMLP(nn.Module):
                def __init__(self, depth=12, width=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))


            def example_inputs():
                return (torch.randn(16, 32),)
            """,
            line=8,
            note="Twelve sigmoid layers with the default init: the first layer gets ~1e-11 of the head's gradient.",
            verify=True,
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
                    nn.init.zeros_(self.fc.bias)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return x + self.act(self.fc(x))


            class ResidualMLP(nn.Module):
                def __init__(self, depth=12, width=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))


            def example_inputs():
                return (torch.randn(16, 32),)
            """,
            note="He-initialized ReLU blocks with residual connections keep the gradient's scale.",
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        m = ctx.measurement
        threshold = ctx.thresholds.vanishing
        # the ratio's verdict only: a signal that left the dtype's range (a vanishing verdict whatever
        # the ratio) is GL204's
        if m.verdict != "vanishing" or m.first_layer is None or m.attenuation is None or m.attenuation >= threshold:
            return
        first, last = m.first_layer, m.layers[-1]
        crossing = adv.crossing([ly.grad_ratio for ly in m.layers], [ly.embedding for ly in m.layers],
                                lambda r: r < threshold)
        where = ""
        if crossing is not None and crossing + 1 < len(m.layers):
            where = (f"; it falls below {threshold_text(threshold)} between {m.layers[crossing + 1].module} and "
                     f"{m.layers[crossing].module}")
        msg = (f"measured on one batch: {first.module} receives {m.attenuation:.1e} of the gradient RMS of "
               f"{last.module} (vanishing below {threshold_text(threshold)}){where}")
        yield self.finding(msg, first.location)
