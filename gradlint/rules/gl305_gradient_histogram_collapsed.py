from __future__ import annotations

import math
from typing import Iterable

from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .measured import estimated_structural_zeros, names, pct, threshold_text


class GradientHistogramCollapsed(Rule):
    code = "GL305"
    name = "gradient-histogram-collapsed"
    severity = "warning"
    summary = "Measured on one batch: a layer's gradient histogram is a narrow peak at (almost) zero."
    what = """
        With `--verify`, gradlint builds a histogram of log10|dL/dW| for every weight layer
        (quarter-decade bins; exact zeros counted apart). The rule fires for a layer when at
        least `share` (default **90%**) of its gradient entries are smaller than `floor`
        (default **1e-7**) in absolute value, exact zeros included: the histogram has collapsed
        into a narrow peak at zero.

        The 1e-7 floor is the absolute vanishing threshold of SageMaker Debugger's
        VanishingGradient rule and of DeepDiagnosis (mean |gradient| < 1e-7). Unlike GL301, which
        compares the first layer with the last, this is an absolute test of each layer, under a
        loss whose gradient at every output is of unit scale: it also catches a network whose
        gradients are all tiny (an output multiplied by a tiny constant, a loss scaled far
        down). Embeddings (sparse gradients by nature) are not reported, nor are structural
        zeros, which are left to GL203: a layer whose gradient is exactly zero because a
        zero-initialized weight sits downstream in the measured pass (see GL301), or whose
        measured gradient is exactly zero where the estimate predicts and explains that zero (a
        zero-initialized BatchNorm scale or gate, also feeding a squeeze-and-excitation branch).
        One finding per model, at the first such layer, naming the others.
    """
    why = """
        An optimizer step moves a weight by about the learning rate times its gradient (SGD), or
        by a step that is dominated by the epsilon term when the gradient is this small (Adam's
        default eps is 1e-8): weights whose gradients sit at 1e-7 and below do not train.
    """
    fix = """
        If GL301 also fires, fix the depth problem it describes. Otherwise look for what scales
        the whole gradient down: a constant multiplying the output, a loss divided by a huge
        number, an output activation that saturates; and the fixes of GL301 for the layers deep
        in the network.
    """
    references = [
        "Amazon SageMaker Debugger built-in rule VanishingGradient (threshold 1e-7 on mean |gradient|)",
        "DeepDiagnosis (Wardat et al., ICSE 2022): vanishing when mean |gradient| < 1e-7",
        "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization (eps = 1e-8)",
    ]
    options = {
        "floor": Option(float, 1e-7, "gradient entries below this magnitude count as collapsed", min=0),
        "share": Option(float, 0.9, "report a layer when at least this share of its entries is below `floor`", min=0, max=1),
    }
    requires = "measurement"
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class TinyOutput(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Linear(32, 64)
                    self.act = nn.ReLU()
                    self.head = nn.Linear(64, 10)

                def forward(self, x):
                    return self.head(self.act(self.body(x))) * 1e-9  # a temperature far too small


            def example_inputs():
                return (torch.randn(16, 32),)
            """,
            line=8,
            note="The output is multiplied by 1e-9: every gradient is ~1e-9, though no layer attenuates another.",
            verify=True,
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Plain(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Linear(32, 64)
                    self.act = nn.ReLU()
                    self.head = nn.Linear(64, 10)

                def forward(self, x):
                    return self.head(self.act(self.body(x)))


            def example_inputs():
                return (torch.randn(16, 32),)
            """,
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        floor, share = self.opts["floor"], self.opts["share"]
        log_floor = math.log10(floor) if floor > 0 else -math.inf
        explained = estimated_structural_zeros(ctx)  # GL203's finding, not a collapse
        hits = []
        for lm in ctx.measurement.layers:
            if lm.embedding or lm.structural_zero or not lm.numel:
                continue
            if lm.zeros == lm.numel and lm.module in explained:
                continue
            f = lm.fraction_below(log_floor)
            if f >= share:
                hits.append((lm, f))
        if not hits:
            return
        first, frac = hits[0]
        zero = f", {pct(first.zero_fraction)} exactly zero" if first.zeros else ""
        others = f"; also {names([lm.module for lm, _ in hits[1:]])}" if len(hits) > 1 else ""
        msg = (f"measured on one batch: {pct(frac)} of the gradient entries of {first.module} are below "
               f"{threshold_text(floor)} in magnitude{zero}: its gradient histogram is a narrow peak at zero{others}")
        yield self.finding(msg, first.location)
