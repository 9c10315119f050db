from __future__ import annotations

from typing import Iterable

from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .measured import flagged_sites, pct


class SaturatedActivations(Rule):
    code = "GL303"
    name = "saturated-activations"
    severity = "warning"
    summary = "Measured on one batch: most inputs of a sigmoid/tanh-family activation sit in its flat tails."
    what = """
        With `--verify`, gradlint records the input (pre-activation) of every sigmoid, tanh,
        softsign, logsigmoid, hardtanh and hardsigmoid in the forward pass, as modules or as
        functional calls (`torch.tanh(x)`), and counts the entries in the activation's flat
        region. The rule fires when more than `fraction` (default **50%**) of them are saturated.

        Saturated means: |z| > `threshold` (default **5**) for sigmoid, tanh and softsign, and
        z > `threshold` for logsigmoid (flat on the positive side only); hardtanh outside its
        `[min_val, max_val]` and hardsigmoid beyond +-3, where their derivative is exactly 0.
        The defaults are DeepDiagnosis's (Wardat et al., ICSE 2022): saturation when more than
        50% of a sigmoid/tanh layer's inputs lie beyond +-5. At 5, sigmoid's derivative is 0.0066
        (2.7% of its maximum) and tanh's 1.8e-4. SageMaker Debugger's SaturatedActivation uses a
        looser +-9.4999 for tanh; set `threshold = 9.5` to match it.

        Calls at one line of code (a block class used N times, a loop) are one finding, pointing
        at the line that constructs the activation or calls it.
    """
    why = """
        A saturated unit passes almost no gradient: its derivative is ~0, so the error signal
        stops there and the weights before it do not learn. Saturation at initialization comes
        from weights or inputs that are too large for the activation.
    """
    fix = """
        Shrink the pre-activations: initialize the preceding layer with Xavier (gain 5/3 for tanh,
        1 for sigmoid) rather than a larger scale, normalize (BatchNorm/LayerNorm) before the
        activation, scale the inputs to unit variance, or use a non-saturating activation in
        hidden layers.
    """
    references = [
        "DeepDiagnosis (Wardat et al., ICSE 2022): saturated when > 50% of sigmoid/tanh inputs lie beyond +-5",
        "Amazon SageMaker Debugger built-in rule SaturatedActivation (tanh input beyond +-9.4999)",
        "LeCun, Bottou, Orr & Müller 1998, Efficient BackProp (keep sigmoid inputs in the linear range)",
    ]
    options = {
        "threshold": Option(float, 5.0, "|pre-activation| beyond which sigmoid/tanh/softsign count as saturated", min=0),
        "fraction": Option(float, 0.5, "report an activation when more than this share of its inputs is saturated", min=0, max=1),
    }
    requires = "measurement"
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=64):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    nn.init.normal_(self.fc.weight, std=20.0 / width ** 0.5)
                    self.act = nn.Tanh()

                def forward(self, x):
                    return self.act(self.fc(x))


            class LoudTanhNet(nn.Module):
                def __init__(self, depth=4, width=64):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            line=10,
            note="Weights 20x too large: about 80% of the tanh inputs lie beyond +-5.",
            verify=True,
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=64):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    nn.init.xavier_normal_(self.fc.weight, gain=nn.init.calculate_gain("tanh"))
                    self.act = nn.Tanh()

                def forward(self, x):
                    return self.act(self.fc(x))


            class TanhNet(nn.Module):
                def __init__(self, depth=4, width=64):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            note="Xavier init keeps the tanh inputs near unit scale.",
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        limit = self.opts["fraction"]
        for g in flagged_sites(ctx.measurement.activations, "saturating", lambda a: a.saturated_fraction > limit):
            worst = g.worst
            rule = (f"|z| > {worst.threshold:g}" if worst.op in ("sigmoid", "tanh", "softsign")
                    else "in the flat region")
            msg = (f"measured on one batch: {pct(g.share)} of the inputs of {worst.op} ({g.where}) are saturated "
                   f"({rule}; worst {pct(worst.saturated_fraction)}), so almost no gradient passes them")
            yield self.finding(msg, worst.location)
