from __future__ import annotations

import math
from typing import Any, Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding


class SignalCollapse(Rule):
    code = "GL204"
    name = "signal-collapse"
    severity = "error"
    requires = "estimate"
    summary = "A predicted activation or gradient underflows or overflows the model's dtype: the signal dies whatever the gradient ratio says."
    what = """
        The estimate's statistics are absolute: the example inputs' measured moments go in, the
        contract's loss (a unit-variance error on every output element) comes out, so gradlint
        knows the RMS of every activation and every gradient, not only their ratios. This rule
        holds them against the dtype the model computes in: below the smallest normal number
        (float32 and bfloat16 1.2e-38, float16 6.1e-5) a value loses its precision and then
        becomes exactly 0 (underflow); above the largest (float16 65504, float32 and bfloat16
        3.4e38) it becomes inf, then NaN (overflow). For overflow the expected largest entry
        (RMS x sqrt(2 ln n) for n entries) is compared.

        It reports the first place the signal leaves the range: the layer where the forward
        activations die, the layer from which the error signal is gone, the weight gradients
        that are past the limit. When a signal underflows, the model's verdict is `vanishing`
        even if the ratio between the layers looks healthy: the ratio of two zeros says nothing.
        The dtype is the model's own parameter dtype, or `--dtype float16|bfloat16|float32`
        (`dtype` in the configuration) for mixed-precision training; with `--verify` the pass then
        runs under `torch.autocast` and the measured activations and gradients confirm it.
    """
    why = """
        A network whose every weight gradient is 1e-60 has perfectly balanced layers and learns
        nothing: in float32 all of those gradients are exactly 0.0, so the optimizer never moves
        (a tiny init in a deep plain net shrinks the signal by the same factor every layer, and 50
        layers of 0.06x are 1e-61). In float16 the range is far narrower: activations above 65504
        are inf, and gradients below 6e-5 lose precision unless a loss scaler moves them up.
        Ratio-based checks (GL201/GL301) cannot see any of this.
    """
    fix = """
        Underflow of activations: initialize for the activation (`kaiming_normal_` for ReLU,
        Xavier with `calculate_gain` for tanh) so each layer keeps the signal's scale, or add
        normalization. Underflow of gradients in float16: use a loss scaler
        (`torch.amp.GradScaler`), bfloat16 (float32's range), or keep the affected layers in
        float32. Overflow: scale the init down, add normalization, or compute the offending
        layers in float32 (`torch.autocast(..., enabled=False)` around them).
    """
    references = [
        "IEEE 754 binary32/binary16 and bfloat16 ranges (torch.finfo)",
        "Micikevicius et al. 2018, Mixed Precision Training (loss scaling against float16 gradient underflow)",
        "Glorot & Bengio 2010; He et al. 2015 (initialization that keeps the signal's scale)",
        "docs/estimator.md, \"Absolute scale\"",
    ]
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class TinyInit(nn.Module):
                def __init__(self, depth=50, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    for layer in self.layers:
                        nn.init.normal_(layer.weight, std=0.01)
                        nn.init.zeros_(layer.bias)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.relu(layer(x))
                    return x
            """,
            line=8,
            note="A plain net initialized with std 0.01: every layer multiplies the signal by ~0.06, so the "
                 "activations fall below float32's 1.2e-38 about 30 layers in and every gradient is exactly 0; "
                 "the gradient ratio between the layers still looks healthy.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class HeInit(nn.Module):
                def __init__(self, depth=50, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    for layer in self.layers:
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                        nn.init.zeros_(layer.bias)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.relu(layer(x))
                    return x
            """,
            note="He initialization keeps the activations' scale through the 50 layers.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        est, m = ctx.estimate, ctx.measurement
        found = list(getattr(est, "collapse", None) or [])
        measured = list(getattr(m, "collapse", None) or []) if m is not None else []
        if not found and not measured:
            return
        if found:
            first = _primary(found)
            parts = [c.describe() for c in sorted(found, key=_order)]
            msg = (f"predicted signal collapse in {first.dtype} (contract loss: a unit error per output element): "
                   + "; ".join(parts))
            shrink = _per_layer_factor(est)
            if shrink is not None:
                msg += f"; the activations change {shrink:.2g}x per weight layer"
            if first.kind == "underflow" and est.attenuation is not None and est.attenuation > 0:
                msg += (f". The gradient ratio ({est.attenuation:.1e}) says nothing here: in {first.dtype} these "
                        "gradients are 0")
            location = first.location
        else:
            primary = measured[0]
            msg = f"measured signal collapse in {m.dtype}: " + "; ".join(_measured_text(c) for c in measured)
            location = primary.get("location")
        if found and m is not None:
            if measured:
                msg += "; measured: " + "; ".join(_measured_text(c) for c in measured)
            else:
                msg += f"; the measured pass ({m.dtype}) stayed in range"
        yield self.finding(msg, location or (ctx.graph.nodes[0].location if ctx.graph and ctx.graph.nodes else None),
                           _fix(found, measured))


def _order(c: Any) -> int:
    return {"activations": 0, "error signal": 1, "weight gradient": 2}.get(c.signal, 3)


def _primary(found: list) -> Any:
    """The collapse to point at: where the activations die, else the gradient's."""
    return sorted(found, key=_order)[0]


def _per_layer_factor(est: Any) -> float | None:
    """Geometric mean change of the input RMS per weight layer (first to last)."""
    acts = [(i, ly.act_rms) for i, ly in enumerate(est.layers) if ly.act_rms and ly.act_rms > 0 and not ly.is_embedding]
    if len(acts) < 3:
        return None
    (i0, a0), (i1, a1) = acts[0], acts[-1]
    if i1 == i0:
        return None
    return math.exp(math.log(a1 / a0) / (i1 - i0))


def _measured_text(c: dict) -> str:
    value = c.get("value")
    what = "exactly 0" if value == 0.0 else f"RMS {value:.1e}"
    more = c.get("count", 1)
    also = f" (and {more - 1} more layer{'s' if more > 2 else ''})" if more > 1 else ""
    return f"{c['signal']} at {c['layer']}{also}: {what} < {c['limit']:.1e}"


def _fix(found: list, measured: list) -> str:
    kinds = {(c.kind, c.signal, c.dtype) for c in found} | {(c["kind"], c["signal"], "") for c in measured}
    if any(k == "overflow" for k, _, _ in kinds):
        return ("scale the init down or add normalization so activations stay bounded; compute the overflowing "
                "layers in float32 (bfloat16 has float32's range)")
    if any(d == "float16" and s != "activations" for _, s, d in kinds) and not any(s == "activations" for _, s, _ in kinds):
        return ("use a loss scaler (torch.amp.GradScaler) or bfloat16, or keep the layers whose gradients underflow "
                "in float32")
    return ("initialize for the activation so every layer keeps the signal's scale (nn.init.kaiming_normal_ for "
            "ReLU, xavier with calculate_gain for tanh), or add normalization between the layers")
