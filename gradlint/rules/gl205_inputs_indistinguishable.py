from __future__ import annotations

import math
from typing import Any, Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding

# What the causes of the estimate's readout are called in the message.
_CAUSES = {
    "biases": "biases (the same offset for every input) larger than what the weights carry of the input",
    "normalization": "normalization layers",
    "added constants": "constants added to the signal",
    "other": "other operations",
}


class InputsIndistinguishable(Rule):
    code = "GL205"
    name = "inputs-indistinguishable"
    severity = "warning"
    requires = "estimate"
    summary = "The forward signal forgets its input: different inputs reach the output as nearly the same activations (the ordered phase)."
    what = """
        Beside each activation's scale, the estimate propagates how alike two different inputs'
        activations are: the correlation of mean-field theory's c-map (Poole et al. 2016;
        Schoenholz et al. 2017), read as the expected cosine similarity of two samples'
        activations, (c + s) / m in the estimator's statistics. In the *ordered phase* that
        similarity goes to 1 with depth: a bias that outweighs what the weights carry of the
        input, or an activation that squashes every input towards its own constant (sigmoid's
        0.5), maps every input to nearly the same vector.

        The rule measures forgetting as the share of the activations' energy that still differs
        between two inputs, relative to the input's, not counting averaging over positions
        (pooling, attention), which lowers it on noise inputs without losing anything. Schoenholz
        et al. find networks trainable up to about six correlation depths, i.e. while more than
        e^-6 (1/403) of that share survives; the rule fires when the model's output has kept less,
        and points at the first weight layer whose input has. This can happen while the gradient
        ratio looks healthy (GL201 silent): the gradient flows, but it carries almost nothing about
        which input produced it. With `--verify` the measured cosine similarity between the
        batch's samples at that layer confirms it; when the measured samples differ more than ten
        times as much as predicted, and by more than e^-6, the finding becomes a note that says so.
    """
    why = """
        If every input reaches the last layers as the same vector (up to one part in a thousand),
        the output cannot depend on the input beyond that part: the loss is nearly the same for
        every example, the gradient points the same way for all of them, and training first has
        to undo the collapse before it can fit anything. Deep networks in the ordered phase train
        slowly or not at all even when their gradients are well scaled.
    """
    fix = """
        Initialize so the weights, not the biases, carry the signal: zero (or small) bias init,
        weight variance for the activation (`kaiming_normal_` for ReLU, Xavier with
        `calculate_gain` for tanh, so sigma_w^2 E[phi'^2] is about 1: the edge of chaos). Use
        zero-mean activations (tanh, GELU) instead of sigmoid in hidden layers, or BatchNorm,
        which removes the part all inputs share; add residual connections so the input reaches
        the later layers directly.
    """
    references = [
        "Poole et al. 2016, Exponential expressivity in deep neural networks through transient chaos",
        "Schoenholz et al. 2017, Deep Information Propagation (correlation depth; trainable up to ~6 of them)",
        "Hayou, Doucet & Rousseau 2019, On the Impact of the Activation Function on Deep Neural Networks Training",
        "docs/estimator.md, \"Information flow\"",
    ]
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class BiasDominated(nn.Module):
                def __init__(self, depth=6, width=256):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(64 if i == 0 else width, width) for i in range(depth)])
                    for layer in self.layers:
                        nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
                        nn.init.normal_(layer.bias, std=2.0)
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.tanh(layer(x))
                    return self.head(x)


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            line=8,
            note="tanh layers whose biases (std 2) outweigh the weights' contribution (sigma_w^2 = 1): after a few "
                 "layers every input gives the same activations (cosine similarity > 0.999), while the gradient "
                 "ratio (2e-3) stays above GL201's threshold.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class HeReLU(nn.Module):
                def __init__(self, depth=30, width=256):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(64 if i == 0 else width, width) for i in range(depth)])
                    for layer in self.layers:
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                        nn.init.zeros_(layer.bias)
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.relu(layer(x))
                    return self.head(x)


            def example_inputs():
                return (torch.randn(16, 64),)
            """,
            note="He init with zero biases sits at the edge of chaos: two inputs' correlation approaches 1 only "
                 "polynomially (1 - c ~ 1/depth^2), about 0.985 after 30 layers.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        est = ctx.estimate
        info = getattr(est, "indistinct", None)
        if info is None:
            return
        msg = (f"inputs become indistinguishable at {info.layer}: two different inputs' activations there have "
               f"a predicted cosine similarity of {_cos(info.cosine)}; only {_share(info.forgetting)} of the share "
               f"that differed between inputs at the model's input is left (limit e^-6 = {math.exp(-6):.1e}, about "
               f"six correlation depths), {_share(info.output_forgetting)} at the output")
        cause = _cause_text(info)
        if cause:
            msg += f"; cause: {cause}"
        if est.attenuation is not None and est.attenuation >= ctx.thresholds.vanishing and not est.zero_reason:
            msg += f" (the gradient ratio, {est.attenuation:.1e}, looks fine)"
        m = ctx.measurement
        severity = None
        if m is not None:
            lm = m.layer(info.layer)
            if lm is not None and lm.cosine is not None:
                msg += f"; measured cosine similarity between the batch's samples there: {_cos(lm.cosine)}"
                if 1.0 - lm.cosine > max(10 * (1.0 - info.cosine), math.exp(-6)):
                    # the measured samples differ ten times more than predicted, and by more than the
                    # forgetting limit: the batch contradicts it
                    msg += "; not raised: the measured batch contradicts the prediction"
                    severity = "info"
        yield self.finding(msg, info.location, _fix(info), severity=severity)


def _fix(info: Any) -> str:
    causes = {k: v for k, v in (info.causes or {}).items() if v < 0}
    key = min(causes, key=causes.get) if causes else ""
    if key == "biases":
        return ("initialize the biases at zero (or small) and the weights for the activation (kaiming_normal_ for "
                "ReLU, xavier with calculate_gain for tanh), so the weights, not the biases, carry the input")
    if key.endswith(" saturation"):
        op = key[: -len(" saturation")]
        return (f"use a zero-mean activation (tanh, GELU, SiLU) instead of {op} in hidden layers, or put BatchNorm "
                "before it (it removes the part every input shares), or add residual connections")
    return ("initialize for the activation (the edge of chaos: sigma_w^2 E[phi'^2] ~ 1) with small biases, use "
            "BatchNorm, or add residual connections so the input reaches the later layers")


def _share(value: float) -> str:
    return "< 1e-16" if value <= 1e-16 else f"{value:.1e}"


def _cos(value: float) -> str:
    """0.99987 -> '0.9999'; enough digits to see how close to 1."""
    if value >= 1.0 - 1e-12:
        return "1.0 (to 12 digits)"
    digits = max(2, min(8, int(math.ceil(-math.log10(max(1.0 - value, 1e-12)))) + 1))
    return f"{value:.{digits}f}"


def _cause_text(info: Any) -> str:
    causes = {k: v for k, v in (info.causes or {}).items() if v < 0}
    total = sum(causes.values())
    if not causes or total >= 0:
        return ""
    key = min(causes, key=causes.get)
    share = causes[key] / total
    if key.endswith(" saturation"):
        op = key[: -len(" saturation")]
        text = f"{op} activations squashing every input towards one value"
    else:
        text = _CAUSES.get(key, key)
    return f"{text} ({100 * share:.0f}% of the loss)"
