"""Shared by the gradient rules (GL201/GL202 predicted, GL301 measured): where a gradient crosses
a threshold, why, and what to do.

Reads the estimator's result (``ctx.estimate``) and the measurement only; imports no torch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from ..ir.ops import SATURATING
from ..ir.verdict import VANISHING


def first_layer(est: Any) -> Any:
    return est.layers[est.first] if est.first is not None else None


def crossing(ratios: Sequence[float | None], embedding: Sequence[bool], predicate: Callable[[float], bool]) -> int | None:
    """Walking from the output towards the input, the index of the first non-embedding layer whose
    ratio meets ``predicate`` (the estimate's layers and the measured ones alike)."""
    for i in range(len(ratios) - 1, -1, -1):
        r = ratios[i]
        if not embedding[i] and r is not None and predicate(r):
            return i
    return None


def predicted_finding(rule: Any, ctx: Any, direction: str) -> Any:
    """GL201's (``direction`` vanishing) or GL202's (exploding) finding, or None: where the
    predicted ratio crosses the threshold, by how much, and why."""
    from ..estimate.explain import dominant, why

    est = ctx.estimate
    vanishing = direction == VANISHING
    threshold = ctx.thresholds.vanishing if vanishing else ctx.thresholds.exploding
    first = first_layer(est)
    att = est.attenuation
    if vanishing and first is not None and att == 0.0 and not est.zero_reason and not est.collapse:
        return _cut_finding(rule, est, first)
    if first is None or att is None or att <= 0:
        return None
    if vanishing and (att >= threshold or est.zero_reason):
        return None
    if not vanishing and att <= threshold:
        return None
    beyond = (lambda r: r < threshold) if vanishing else (lambda r: r > threshold)
    i = crossing([ly.grad_ratio for ly in est.layers], [ly.is_embedding for ly in est.layers], beyond)
    cross = est.layers[i] if i is not None else first
    last = est.layers[-1]
    total = math.log10(att)
    steps_out = sum(1 for ly in est.layers[est.layers.index(cross):] if not ly.is_embedding) - 1
    reason = why(first.causes, total)
    cause = dominant(first.causes, total)
    scale = weight_scale(est) if vanishing else ""
    if cause == "weights" and scale:
        reason += f" [{scale}]"
    share = f"{att:.1e} of" if vanishing else f"{att:.1e} times"
    msg = (f"predicted {direction} gradient: {first.module} gets {share} {last.module}'s weight-gradient RMS "
           f"({abs(total):.1f} decades; threshold {threshold:g}); the prediction crosses the threshold here, at "
           f"{cross.module} ({cross.grad_ratio:.1e}), {steps_out} weight layer{'s' if steps_out != 1 else ''} "
           f"before the output" + (f"; {reason}" if reason else ""))
    fix = fix_for_vanishing(cause, est) if vanishing else fix_for_exploding(cause, est)
    return rule.finding(msg, cross.location or first.location, fix)


def weight_scale(est: Any) -> str:
    """'sigma_w^2 ~ 0.33 per layer (default init of Linear ...)' from the weight layers' steps."""
    values, sources = [], {}
    for ly in est.layers:
        info = est.steps[ly.node].info if ly.node < len(est.steps) else {}
        if "sigma_w2" in info:
            values.append(info["sigma_w2"])
            src = info.get("init") or ""
            sources[src] = sources.get(src, 0) + 1
    if not values:
        return ""
    values.sort()
    med = values[len(values) // 2]
    src = max(sources, key=sources.get) if sources else ""
    if src == "weights":
        src = "measured from the weights"
    return f"sigma_w^2 ~ {med:.2g} per layer" + (f", {src}" if src else "")


def activation_ops(cause: str | None) -> str | None:
    if cause and cause.endswith(" derivatives"):
        return cause[: -len(" derivatives")]
    return None


def fix_for_vanishing(cause: str | None, est: Any) -> str:
    op = activation_ops(cause)
    if op in SATURATING:
        return (f"use ReLU/GELU/SiLU in the hidden layers (keep {op} for outputs and gates), or put BatchNorm before "
                f"each {op} (LayerNorm does not rescue sigmoid: its 0.5 offset counts as variance), or add residual "
                "connections around the blocks")
    if op is not None or cause == "weights":
        return ("initialize the weights for the activation, e.g. nn.init.kaiming_normal_(m.weight, nonlinearity='relu') "
                "for ReLU-family (sigma_w^2 * E[phi'^2] = 1), nn.init.xavier_normal_ with calculate_gain for tanh; "
                "PyTorch's default (sigma_w^2 = 1/3) shrinks the gradient every layer; or add normalization")
    if cause == "normalization":
        return ("a normalization divides the gradient by a large variance: after a positive-mean activation "
                "(sigmoid, softplus) LayerNorm counts the constant offset as variance; use BatchNorm or a zero-mean "
                "activation, or normalize before the activation")
    if cause and "through time" in cause:
        return ("the recurrence shrinks the gradient every step: use an LSTM/GRU with forget-gate bias 1, an "
                "orthogonal W_hh, shorter sequences (truncated BPTT), or attention")
    if cause == "attention":
        return "use pre-LN blocks with residual connections around attention and MLP"
    return "add residual connections or normalization between the layers, and initialize for the activation"


def fix_for_exploding(cause: str | None, est: Any) -> str:
    if cause == "normalization":
        return ("deep BatchNorm stacks amplify the gradient ~pi/(pi-1) per layer at initialization (Yang et al. "
                "2019): add residual connections (and zero-init the last BN gamma of each block), or use fewer "
                "layers between skips")
    if cause in ("merge", None):
        return ("residual branches add up every block: scale each branch (1/sqrt(depth)), zero-initialize the last "
                "layer of each branch (Fixup/SkipInit), or add normalization")
    op = activation_ops(cause)
    if op is not None or cause == "weights":
        return ("the init is too large for the activation: use kaiming/xavier with the activation's gain "
                "(nn.init.calculate_gain), or add normalization")
    return "add normalization, reduce the initial weight scale, or clip gradients"



def _cut_finding(rule: Any, est: Any, first: Any) -> Any:
    """No gradient at all reaches the first layer, and no zero weight explains it: every path from
    the loss back to it is cut (``.detach()``, ``torch.no_grad()``, a round trip through integers),
    or passes an op the estimate could not follow. Those layers would never train."""
    layers = [ly for ly in est.layers if not ly.is_embedding]
    dead = [ly for ly in layers if ly.grad_ratio == 0.0]
    live = next((ly for ly in layers[layers.index(dead[-1]) + 1:] if ly.grad_ratio), None) if dead else None
    where = (f"the gradient stops between {dead[-1].module} and {live.module}" if live is not None
             else f"the gradient stops after {dead[-1].module}" if dead else "")
    unmodelled = sorted({u.op for u in est.unhandled})
    others = len(dead) - 1
    who = f"{first.module} and {others} more weight layer{'s' if others != 1 else ''}" if others > 0 else first.module
    msg = (f"predicted vanishing gradient: {who} get{'s' if others <= 0 else ''} no gradient at all from the loss "
           f"(exactly 0): every path back to {'them' if others > 0 else 'it'} is cut" + (f"; {where}" if where else "")
           + (f" (the estimate does not model {', '.join(unmodelled[:3])}: check with --verify)" if unmodelled else ""))
    fix = ("remove the .detach() / torch.no_grad() / integer round trip between those layers and the output, or "
           "freeze them on purpose (requires_grad_(False)) so they are not expected to learn")
    return rule.finding(msg, first.location, fix)
