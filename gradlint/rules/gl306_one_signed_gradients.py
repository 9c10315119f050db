from __future__ import annotations

from typing import Iterable

from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .measured import names, pct


class OneSignedGradients(Rule):
    code = "GL306"
    name = "one-signed-gradients"
    severity = "warning"
    summary = "Measured on one batch: nearly all of a layer's gradient entries have the same sign."
    what = """
        With `--verify`, gradlint counts the positive and negative entries of every weight
        layer's gradient dL/dW. The rule fires when at least `skew` (default **95%**) of the
        nonzero entries share one sign, for layers with at least `min-entries` (default 32)
        nonzero entries. The starting notes of this project list "sharply skewed distributions
        (only negative or only positive)" among the red flags of a per-layer gradient histogram.

        No peer tool publishes a threshold for this; 95% is gradlint's own. Under the default
        random-projection loss the two signs are equally likely for every entry (the loss is
        symmetric), so a healthy layer sits near 50%; the rule therefore mostly fires with a
        user loss (`gradlint_loss`) that pushes every output the same way. Embeddings and
        structural zeros are skipped. One finding per model, at the first such layer.
    """
    why = """
        dL/dW of a unit is its error signal times the layer's input. When the input is all
        positive (sigmoid or ReLU outputs, not zero-centred) every weight of a unit gets the same
        sign, and when the error signal also shares one sign across units the whole layer moves
        in one direction: updates zig-zag instead of heading for the optimum, and training slows
        (LeCun et al. 1998, section 4.3).
    """
    fix = """
        Feed the layer zero-centred inputs: normalization (BatchNorm/LayerNorm) before it,
        a zero-centred activation (tanh) before it, or centred input data; or check whether the
        loss should push every output in the same direction.
    """
    references = [
        "LeCun, Bottou, Orr & Müller 1998, Efficient BackProp, section 4.3 (inputs not centred: one-signed updates)",
        "gradlint's starting notes: red flags in gradient histograms (narrow peaks at 0, only-positive or only-negative)",
    ]
    options = {
        "skew": Option(float, 0.95, "report a layer when at least this share of its nonzero entries has one sign", min=0.5, max=1),
        "min-entries": Option(int, 32, "skip layers with fewer nonzero gradient entries", min=1),
    }
    requires = "measurement"
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Critic(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
                    self.score = nn.Linear(64, 1)

                def forward(self, x):
                    return self.score(self.body(x))


            def gradlint_loss(output):
                return output.mean()  # a critic's loss: push every score up


            def example_inputs():
                return (torch.randn(16, 32),)
            """,
            line=9,
            note="The score layer's input is all positive (ReLU) and the loss pushes every output up: "
                 "every weight of `score` gets a positive gradient.",
            verify=True,
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Critic(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(32, 64), nn.Tanh())
                    self.score = nn.Linear(64, 1)

                def forward(self, x):
                    return self.score(self.body(x))


            def gradlint_loss(output):
                return output.mean()


            def example_inputs():
                return (torch.randn(16, 32),)
            """,
            note="tanh is zero-centred: the score layer's gradient has both signs.",
            verify=True,
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        skew, minimum = self.opts["skew"], self.opts["min-entries"]
        hits = []
        for lm in ctx.measurement.layers:
            share = lm.positive_share
            if lm.embedding or lm.structural_zero or share is None or lm.positive + lm.negative < minimum:
                continue
            if share >= skew or share <= 1 - skew:
                hits.append(lm)
        if not hits:
            return
        first = hits[0]
        share = first.positive_share or 0.0
        sign, frac = ("positive", share) if share >= 0.5 else ("negative", 1 - share)
        others = f"; also {names([lm.module for lm in hits[1:]])}" if len(hits) > 1 else ""
        msg = (f"measured on one batch: {pct(frac)} of the nonzero gradient entries of {first.module} are {sign}: "
               f"its weights would all move one way{others}")
        yield self.finding(msg, first.location)
