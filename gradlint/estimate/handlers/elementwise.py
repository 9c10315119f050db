"""Elementwise math outside the activation table (``kind == other``): exp, log, sqrt, rsqrt,
reciprocal, pow, square, abs, clamp, erf, sin, cos — enough for hand-written normalizations
(``x * torch.rsqrt(x.pow(2).mean(-1) + eps)``) and gates.

Functions defined on positive numbers (log, sqrt, rsqrt, reciprocal) are applied to positive
statistics (a mean of squares) in practice: they use the delta method, f(E[x]) and f'(E[x]).
"""

from __future__ import annotations

import math

import numpy as np

from ...ir import graph as g
from .. import activations as acts
from .. import gaussian as gs
from ..context import Unsupported
from ..registry import Step, handles
from ..signals import Grad, Signal


def _scalar(node, default: float) -> float:
    for item in node.attrs.get("scalars", ()) or ():
        if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], (int, float)):
            return float(item[1])
    return default


def _named(node, name: str):
    for item in node.attrs.get("scalars", ()) or ():
        if isinstance(item, (tuple, list)) and len(item) == 2 and item[0] == name:
            return item[1]
    return None


_SMOOTH = {
    "exp": (np.exp, np.exp),
    "square": (np.square, lambda x: 2 * x),
    "abs": (np.abs, np.sign),
    "erf": (gs.erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)),
    "sin": (np.sin, np.cos),
    "cos": (np.cos, lambda x: -np.sin(x)),
}

_POSITIVE = {
    "log": (math.log, lambda v: 1 / v),
    "sqrt": (math.sqrt, lambda v: 0.5 / math.sqrt(v)),
    "rsqrt": (lambda v: 1 / math.sqrt(v), lambda v: -0.5 * v ** -1.5),
    "reciprocal": (lambda v: 1 / v, lambda v: -1 / (v * v)),
}


def _from_activation(node, act, x: Signal) -> Step:
    mom = act.moments(x.mu, x.var)
    c = act.cross_f(x.mu, x.var, x.rho_samples)
    out = Signal(mom.ef2, mom.ef, c, c if x.p <= x.c else act.cross_f(x.mu, x.var, x.rho_positions)).clean()
    n = len(node.inputs)
    return Step(out, lambda grad: [Grad(grad.g * mom.edf2, grad.rho)] + [Grad(0.0)] * (n - 1),
                cause=f"{node.op}", lipschitz=[math.sqrt(mom.edf2)] + [0.0] * (n - 1), bound_is_estimate=True)


@handles(g.OTHER, *_SMOOTH)
def smooth(node, ins, ctx) -> Step:
    f, df = _SMOOTH[node.op]
    kinks = (0.0,) if node.op == "abs" else ()
    return _from_activation(node, acts.Activation(node.op, f, df, kinks), ins[0])


@handles(g.OTHER, "clamp")
def clamp(node, ins, ctx) -> Step:
    lo, hi = _named(node, "min"), _named(node, "max")
    pos = [v for k, v in (node.attrs.get("scalars") or ()) if isinstance(k, int)]
    lo = lo if lo is not None else (pos[0] if len(pos) > 0 else None)
    hi = hi if hi is not None else (pos[1] if len(pos) > 1 else None)
    lo = float(lo) if isinstance(lo, (int, float)) else -math.inf
    hi = float(hi) if isinstance(hi, (int, float)) else math.inf
    pieces = []
    if math.isfinite(lo):
        pieces.append((-math.inf, lo, 0.0, lo))
    pieces.append((lo, hi, 1.0, 0.0))
    if math.isfinite(hi):
        pieces.append((hi, math.inf, 0.0, hi))
    return _from_activation(node, acts.PiecewiseLinear("clamp", tuple(pieces)), ins[0])


@handles(g.OTHER, "pow")
def power(node, ins, ctx) -> Step:
    k = _scalar(node, 2.0)
    x = ins[0]
    if k == 2.0:
        return _from_activation(node, acts.Activation("pow", np.square, lambda v: 2 * v), x)
    if x.mu > 0 and x.var <= 0.01 * x.mu * x.mu:
        return _delta(node, x, lambda v: v ** k, lambda v: k * v ** (k - 1))
    if float(k).is_integer() and k > 0:
        return _from_activation(node, acts.Activation("pow", lambda v: v ** k, lambda v: k * v ** (k - 1)), x)
    raise Unsupported(f"pow with exponent {k} of a signed tensor")


def _delta(node, x: Signal, f, df) -> Step:
    v = x.mu if x.mu > 0 else math.sqrt(x.m)
    if v <= 0:
        raise Unsupported(f"{node.op} of a tensor that is zero")
    y, d = f(v), df(v)
    out = Signal(y * y, y, y * y, y * y)
    n = len(node.inputs)
    return Step(out, lambda grad: [Grad(grad.g * d * d, grad.rho)] + [Grad(0.0)] * (n - 1), cause=node.op,
                lipschitz=[abs(d)] + [0.0] * (n - 1), bound_is_estimate=True)


@handles(g.OTHER, *_POSITIVE)
def positive(node, ins, ctx) -> Step:
    f, df = _POSITIVE[node.op]
    return _delta(node, ins[0], f, df)
