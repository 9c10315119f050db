from __future__ import annotations

import math
from typing import Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding
from .measured import names


class NonFiniteGradients(Rule):
    code = "GL307"
    name = "non-finite-gradients"
    severity = "error"
    summary = "Measured on one batch: the loss or a gradient is NaN or infinite."
    what = """
        With `--verify`, gradlint checks the loss, the error signal at every weight layer's
        output and every weight gradient for NaN and infinity. Any non-finite value fires the
        rule: there is no threshold to choose, since one NaN poisons every weight it reaches at
        the first optimizer step.

        To point at the cause, gradlint then reruns the forward without gradients and checks
        every torch call: the finding points at the line of the first call that turned finite
        inputs into NaN or infinity (`torch.log` of a negative number, `x / 0`, an overflow).
        When the forward is finite the problem is in the backward (the derivative of `sqrt` or
        `log` at 0, say): the finding points at the weight layer after which the error signal
        turned non-finite.
    """
    why = """
        A NaN or an infinite gradient turns the weights it touches into NaN at the first step,
        and the model never recovers; with mixed precision it silently skips steps instead.
    """
    fix = """
        Guard the operation: `torch.log(x.clamp_min(eps))` or `torch.log1p`, `torch.sqrt(x + eps)`,
        divisions by `x.clamp_min(eps)`, `logsumexp` instead of `log(sum(exp))`, and a numerically
        stable loss (`cross_entropy` on logits rather than `log(softmax)`).
    """
    references = [
        "PyTorch documentation, torch.autograd.detect_anomaly (finding the op whose backward produced NaN)",
        "Micikevicius et al. 2018, Mixed Precision Training (steps with inf/NaN gradients are skipped)",
    ]
    requires = "measurement"
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class LogFeatures(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 16)
                    self.head = nn.Linear(16, 4)

                def forward(self, x):
                    h = torch.log(self.fc(x))  # negative inputs give NaN
                    return self.head(h)


            def example_inputs():
                return (torch.randn(8, 16),)
            """,
            line=12,
            note="`torch.log` of negative numbers: NaN in the forward, NaN in every gradient.",
            verify=True,
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F


            class LogFeatures(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 16)
                    self.head = nn.Linear(16, 4)

                def forward(self, x):
                    h = torch.log(F.softplus(self.fc(x)) + 1e-6)
                    return self.head(h)


            def example_inputs():
                return (torch.randn(8, 16),)
            """,
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        m = ctx.measurement
        if not m.has_nonfinite:
            return
        bad = [lm.module for lm in m.layers if lm.nonfinite or lm.delta_nonfinite]
        loss = "" if m.loss_value is None or math.isfinite(m.loss_value) else f"the loss is {m.loss_value}; "
        layers = f"non-finite gradients in {names(bad)}" if bad else "non-finite values"
        origin = m.nonfinite_origin or {}
        location = origin.get("location")
        if location is None and m.layers:
            first_bad = next((lm for lm in m.layers if lm.nonfinite or lm.delta_nonfinite), m.layers[0])
            location = first_bad.location
        cause = f": {origin['what']}" if origin.get("what") else ""
        yield self.finding(f"measured on one batch: {loss}{layers}{cause}", location)
