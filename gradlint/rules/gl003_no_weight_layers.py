from __future__ import annotations

from typing import Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding


class NoWeightLayers(Rule):
    code = "GL003"
    name = "no-weight-layers"
    severity = "warning"
    summary = "The model was built and captured, but no weight layer was found in it: nothing was checked."
    what = """
        Reports a model whose captured graph holds no weight layer: no Linear, convolution,
        recurrent, attention or embedding layer (and no module applying `F.linear`/`F.conv*` to a
        weight of its own) between its inputs and outputs. Every other rule and the estimate
        work on weight layers, so such a model was not checked at all. The finding points at the
        model's definition.
    """
    why = """
        A model that could not be checked must not look like a model that passed: "All checks
        passed" on a file whose layers gradlint did not see is a silent miss. Typical causes:
        the weights live in a structure the capture does not recognize, the forward returns
        before reaching them, or the target names a weightless helper (an activation class).
    """
    fix = """
        Point gradlint at the model rather than a helper (`file.py::Net`), make sure the example
        inputs reach the layers, or report the module the capture missed. A weightless module
        discovered in a file is skipped without a finding; this appears for models that were
        named or that own parameters.
    """
    references = ["gradlint README, section *Rules* (severities: a model gradlint could not check is never silent)"]
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Scaler(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.scale = nn.Parameter(torch.ones(8))

                def forward(self, x):
                    return torch.tanh(x) * self.scale


            def example_inputs():
                return (torch.randn(4, 8),)
            """,
            line=5,
            note="A learned elementwise scale and no weight matrix: nothing for the gradient checks to look at.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class TinyNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 2)

                def forward(self, x):
                    return self.fc(x)
            """,
            note="One Linear layer is enough to be checked.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.graph.weight_layers():
            return
        params = ctx.extras.get("parameters")
        owned = f"it has {params:,} parameters, but " if params else ""
        yield self.finding(
            f"no weight layer found: {owned}the captured graph has no Linear, convolution, recurrent, attention or "
            "embedding layer between the inputs and the outputs, so gradlint checked nothing in this model",
            ctx.location)
