"""Elementwise activations (every one in ``capture.kinds.ACTIVATIONS``) and GLU."""

from __future__ import annotations

from ... import graph as g
from .. import activations
from ..context import Unsupported
from ..registry import Step, handles
from ..signals import Grad, Signal
from .common import clip01


def _attrs(node, ctx) -> dict:
    attrs = dict(node.attrs)
    if node.op == "prelu":  # the learned slope: measured, or PReLU's init 0.25
        w = ctx.param(node, "weight") or ctx.param(node, "scale")
        if w is not None:
            attrs["slope"] = w.mean
    return attrs


RECTIFIED = frozenset({"relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "selu", "gelu", "silu", "softplus",
                       "mish", "hardswish"})


def _rectified_skip(node, ctx):
    """When ``node`` acts on ``a + b`` with ``a`` a rectifying activation's output (a ResNet block's
    final ReLU on identity + branch): (that activation, its input signal, the other summand)."""
    prod = ctx.producer(node, 0)
    if prod.kind != g.ADD or len(set(prod.inputs)) != 2 or prod.params or prod.attrs.get("scalars"):
        return None
    for i, j in ((0, 1), (1, 0)):
        a = ctx.graph[prod.inputs[i]]
        if a.kind == g.ACTIVATION and a.op in RECTIFIED and a.inputs:
            inner = activations.get(a.op, _attrs(a, ctx))
            if inner is not None:
                return inner, ctx.signals[a.inputs[0]], ctx.signals[prod.inputs[j]]
    return None


@handles(g.ACTIVATION)
def activation(node, ins, ctx) -> Step:
    act = activations.get(node.op, _attrs(node, ctx))
    if act is None or not ins:
        raise Unsupported(f"no Gaussian model of activation {node.op!r}")
    x = ins[0]
    var = x.var
    mom = act.moments(x.mu, var)
    skip = _rectified_skip(node, ctx) if node.op in RECTIFIED else None
    if skip is not None:
        inner, h, f = skip
        mom = act.moments_of_sum(inner, h.mu, h.var, f.mu, f.var)
    c = act.cross_f(x.mu, var, x.rho_samples)
    spatial = x.p > x.c + 1e-12 * max(x.m, 1e-300)
    p = act.cross_f(x.mu, var, x.rho_positions) if spatial else c
    s = act.cross_f(x.mu, var, x.rho_same_position) - c if x.s > 1e-12 * max(x.m, 1e-300) else 0.0
    out = Signal(mom.ef2, mom.ef, c, p, s).clean()
    # how much of a position-coherent gradient stays coherent through phi' (masks decorrelate it)
    coherence = act.cross_df(x.mu, var, x.rho_positions) / mom.edf2 if mom.edf2 > 0 else 0.0
    n_extra = len(node.inputs) - 1

    # phi' varies across entries: only its mean keeps a zero-sum gradient zero-sum
    keep_centered = mom.edf * mom.edf / mom.edf2 if mom.edf2 > 0 else 0.0

    def backward(grad: Grad) -> list[Grad]:
        return [Grad(grad.g * mom.edf2, clip01(grad.rho * coherence), grad.centered * keep_centered)] + [Grad(0.0)] * n_extra

    zero = f"{node.op}'(x) is 0 for every input the model sees" if mom.edf2 == 0.0 else None
    return Step(out, backward, cause=f"{node.op} derivatives", lipschitz=[act.sup_df] + [0.0] * n_extra,
                zero=zero, info={"edf2": mom.edf2, "q": x.m, "op": node.op})


@handles(g.ACTIVATION, "glu")
def glu(node, ins, ctx) -> Step:
    """a * sigmoid(b), the input split in halves along ``dim``."""
    x = ins[0]
    sig = activations.get("sigmoid")
    mom = sig.moments(x.mu, x.var)
    out = Signal(x.m * mom.ef2, x.mu * mom.ef, x.c * mom.ef ** 2, x.p * mom.ef ** 2).clean()
    # total norm over both halves: d/da = sigmoid(b), d/db = a sigmoid'(b); each half is half the input
    gain = 0.5 * (mom.ef2 + x.m * mom.edf2) * 2.0

    def backward(grad: Grad) -> list[Grad]:
        return [Grad(grad.g * gain, grad.rho)] + [Grad(0.0)] * (len(node.inputs) - 1)

    return Step(out, backward, cause="glu gates", lipschitz=[1.0 + sig.sup_df], bound_is_estimate=True)
