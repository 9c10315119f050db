"""Shared by the GL2xx rules: where a predicted gradient crosses a threshold, why, and what to do.

Reads the estimator's result (``ctx.estimate``) only; imports no torch.
"""

from __future__ import annotations

import math
from typing import Any

from ..ir.ops import SATURATING



def first_layer(est: Any) -> Any:
    return est.layers[est.first] if est.first is not None else None


def crossing(est: Any, predicate) -> Any:
    """Walking from the output towards the input, the first layer whose ratio meets ``predicate``."""
    for ly in reversed(est.layers):
        if ly.is_embedding or ly.grad_ratio is None:
            continue
        if predicate(ly.grad_ratio):
            return ly
    return None


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


def decades(x: float) -> float:
    return math.log10(x) if x > 0 else float("-inf")
