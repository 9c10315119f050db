from __future__ import annotations

from typing import Iterable

from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .measured import flagged_sites, pct


class DeadUnits(Rule):
    code = "GL304"
    name = "dead-units"
    severity = "warning"
    summary = "Measured on one batch: most inputs of a ReLU are <= 0, so its units pass no gradient."
    what = """
        With `--verify`, gradlint records the input of every ReLU and ReLU6 (modules and
        functional calls) in the forward pass and counts the entries where the derivative is 0:
        z <= 0 (and z >= 6 for ReLU6). The rule fires when at least `fraction` (default **70%**)
        of them are inactive. The message also gives the share of *dead units*: output
        coordinates that are inactive for every example of the batch.

        The 70% default is the threshold of DeepDiagnosis (Wardat et al., ICSE 2022: dead when
        >= 70% of a layer's activations are <= 0) and of AUTOTRAINER (Zhang et al., ICSE 2021:
        dying ReLU when >= 70% of the gradient entries are zero). A healthy ReLU at
        initialization is inactive on about half of its inputs. Calls at one line are one
        finding, pointing at the line that constructs the ReLU or calls it.
    """
    why = """
        A ReLU passes no gradient where its input is negative. When most inputs are negative at
        initialization the layers before it receive little or no gradient, and units negative on
        every input never recover: they are dead for the rest of training.
    """
    fix = """
        Remove the negative shift: zero (or small positive) biases before the ReLU, He
        initialization, normalization before the activation; or use LeakyReLU/GELU/SiLU, which
        pass some gradient for negative inputs.
    """
    references = [
        "DeepDiagnosis (Wardat et al., ICSE 2022): dead when >= 70% of activations are <= 0",
        "AUTOTRAINER (Zhang et al., ICSE 2021): dying ReLU when >= 70% of gradient entries are zero",
        "Amazon SageMaker Debugger built-in rule DeadRelu",
        "Lu et al. 2019, Dying ReLU and Initialization: Theory and Numerical Examples",
    ]
    options = {"fraction": Option(float, 0.7, "report a ReLU when at least this share of its inputs is <= 0", min=0, max=1)}
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
                    nn.init.constant_(self.fc.bias, -1.0)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return self.act(self.fc(x))


            class NegativeBiasNet(nn.Module):
                def __init__(self, depth=4, width=64):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            line=10,
            note="A bias of -1 pushes nearly every pre-activation below zero.",
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
                    nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
                    nn.init.zeros_(self.fc.bias)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return self.act(self.fc(x))


            class HeReLUNet(nn.Module):
                def __init__(self, depth=4, width=64):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            note="Zero biases and He init: about half of the inputs are positive.",
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        limit = self.opts["fraction"]
        for g in flagged_sites(ctx.measurement.activations, "relu", lambda a: a.inactive_fraction >= limit):
            units = sum(a.units for a in g.sites)
            dead = f", {pct(sum(a.dead_units for a in g.sites) / units)} of its units are off for the whole batch" \
                if units else ""
            msg = (f"measured on one batch: {pct(g.share)} of the inputs of {g.worst.op} ({g.where}) are <= 0 and "
                   f"pass no gradient (worst {pct(g.worst.inactive_fraction)}){dead}")
            yield self.finding(msg, g.worst.location)
