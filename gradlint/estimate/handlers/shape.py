"""Nodes that move or drop data: flatten/unflatten/shuffles, upsampling, padding, dropout.

(Views, permutes and indexing are not nodes at all: the capture aliases them away, which is exact
for total gradient norms.)
"""

from __future__ import annotations

from ...ir import graph as g
from ..context import numel
from ..registry import Step, handles
from ..signals import Grad, Signal


@handles(g.RESHAPE)
def reshape(node, ins, ctx) -> Step:
    """Flatten, unflatten, pixel/channel shuffles: values unchanged. Flattening a feature map
    turns its positions into features, so the within-sample position structure goes away."""
    x = ins[0]
    out_shape = node.out_shape or ()
    if len(out_shape) <= 2:  # positions became features: a pattern is now a per-feature constant
        out = Signal(x.m, x.mu, x.c + x.s, x.c + x.s, 0.0)
    else:
        out = Signal(x.m, x.mu, x.c, x.p, x.s)
    n = len(node.inputs)
    return Step(out, lambda grad: [grad] + [Grad(0.0)] * (n - 1), cause="reshape", lipschitz=[1.0] + [0.0] * (n - 1))


@handles(g.RESHAPE, "upsample")
def upsample(node, ins, ctx) -> Step:
    """Nearest-style repetition of each entry r times: the r copies' gradients add."""
    return _copies(node, ins, ctx)


def _copies(node, ins, ctx) -> Step:
    """Every output entry is a copy of an input entry, each input entry copied ~r times
    (r = output size / input size): values unchanged, the r copies' gradients add."""
    x = ins[0]
    r = max(1.0, numel(node.out_shape) / max(numel(ctx.in_shape(node, 0)), 1))
    n = len(node.inputs)

    def backward(grad: Grad) -> list[Grad]:
        return [Grad(grad.g * (1.0 + (r - 1.0) * grad.rho), grad.rho)] + [Grad(0.0)] * (n - 1)

    return Step(Signal(x.m, x.mu, x.c, x.p, x.s), backward, cause="reshape", lipschitz=[r ** 0.5] + [0.0] * (n - 1))


@handles(g.RESHAPE, "pad")
def pad(node, ins, ctx) -> Step:
    """Zero (constant) padding adds entries of 0: statistics and gradient scale by the kept share.
    Reflection, replication and circular padding copy entries: values unchanged, and the copies'
    gradients add onto the entries they copy (as upsampling's do)."""
    if node.attrs.get("mode") in ("reflect", "replicate", "circular"):
        return _copies(node, ins, ctx)
    x = ins[0]
    keep = min(1.0, numel(ctx.in_shape(node, 0)) / max(numel(node.out_shape), 1))
    n = len(node.inputs)
    out = Signal(x.m * keep, x.mu * keep, x.c * keep, x.p * keep, x.s * keep)
    return Step(out, lambda grad: [Grad(grad.g * keep, grad.rho)] + [Grad(0.0)] * (n - 1), cause="reshape",
                lipschitz=[1.0] + [0.0] * (n - 1))


@handles(g.DROPOUT)
def dropout(node, ins, ctx) -> Step:
    """Train mode: forward second moment / (1 - p), backward gain 1 / (1 - p). Stochastic depth
    (DropPath) is the identity: --verify measures with it off (``verify/stochastic_depth.py``)."""
    x = ins[0]
    p = node.attrs.get("p")
    p = float(p) if isinstance(p, (int, float)) and 0 <= p < 1 and node.op != "stochastic_depth" else 0.0
    k = 1.0 / (1.0 - p)
    n = len(node.inputs)
    out = Signal(x.m * k, x.mu, x.c, x.p, x.s)
    return Step(out, lambda grad: [Grad(grad.g * k, grad.rho * (1 - p))] + [Grad(0.0)] * (n - 1), cause="dropout",
                lipschitz=[k] + [0.0] * (n - 1))


@handles(g.OTHER, "unfold")
def unfold(node, ins, ctx) -> Step:
    """im2col: each input entry lands in ~r patches (r = kernel area / stride area); the copies'
    gradients add, like upsampling's."""
    return _copies(node, ins, ctx)


@handles(g.OTHER, "fold")
def fold(node, ins, ctx) -> Step:
    """col2im, unfold's adjoint: each output entry sums the ~r patch entries that overlap it,
    taken from r different positions (so E[(sum)^2] = r m + r (r - 1) p); each input entry's
    gradient is the one of the output entry it lands in."""
    x = ins[0]
    r = max(1.0, numel(ctx.in_shape(node, 0)) / max(numel(node.out_shape), 1))
    n = len(node.inputs)
    r2 = r * r
    out = Signal(r * x.m + r * (r - 1.0) * x.p, r * x.mu, r2 * x.c, r2 * x.p, r2 * x.s).clean()
    return Step(out, lambda grad: [Grad(grad.g * r, grad.rho)] + [Grad(0.0)] * (n - 1), cause="reshape",
                lipschitz=[r ** 0.5] + [0.0] * (n - 1))
