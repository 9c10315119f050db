"""Pooling and reductions: average (k x k, adaptive, global, ``mean``), ``sum``, max.

Average pooling of K entries has backward gain 1/K (docs/estimator.md) and, forward, averages K
positions whose shared part (``p``) survives. Global average pooling sends the same gradient to
every position of a sample: the gradient becomes fully coherent (rho = 1), which is what makes the
weight gradients of the conv layers before it large. Max pooling routes the gradient to one entry
per window (gain ~1) and keeps the largest of K values.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ...ir import graph as g
from .. import activations
from .. import gaussian as gs
from ..context import Unsupported, numel
from ..registry import Step, handles
from ..signals import Grad, Signal
from .common import clip01

PATTERN_NEIGHBOURS = 0.5  # correlation of the sample-shared pattern between neighbouring positions

MONOTONE = frozenset({"relu", "leaky_relu", "prelu", "relu6", "hardtanh", "elu", "celu", "selu", "sigmoid", "tanh",
                      "softplus", "hardsigmoid", "identity", "softsign", "logsigmoid"})


def _window(node, ctx) -> tuple[int, int, int]:
    """(K entries per output, input positions, output positions) from the shapes."""
    si, so = ctx.in_shape(node, 0), node.out_shape
    if not si or not so:
        raise Unsupported("pooling without shapes")
    nd = max(len(si) - 2, 1)
    p_in, p_out = numel(si[-nd:]), numel(so[-nd:]) if len(so) >= nd else 1
    k = node.attrs.get("kernel_size")
    if isinstance(k, int):
        big_k = k ** nd
    elif isinstance(k, tuple) and k and all(isinstance(v, int) for v in k):
        big_k = math.prod(k)
    else:  # adaptive: the input/output ratio
        big_k = max(1, round(p_in / max(p_out, 1)))
    return big_k, p_in, p_out


def _average(node, ins, ctx, big_k: int, p_in: int, p_out: int, summed: bool = False) -> Step:
    x = ins[0]
    if p_out > 1:
        # A local window: neighbours share part of the sample-shared pattern. Measured after 2x2
        # average pooling in 5 CNN configurations x 3 seeds: 40-80% of it kept (white: 25%,
        # smooth: 100%); a neighbour correlation of 0.5 keeps 62%.
        s = x.s * (1.0 + (big_k - 1) * PATTERN_NEIGHBOURS) / big_k
        m = s + (x.m - x.s + (big_k - 1) * x.p) / big_k
        p = x.p
    else:  # global pooling: the pattern averages out over all positions
        m = (x.m + (big_k - 1) * x.p) / big_k
        p, s = m, 0.0
    scale2 = big_k * big_k if summed else 1.0
    out = Signal(m * scale2, x.mu * (big_k if summed else 1.0), x.c * scale2, p * scale2, s * scale2).clean()
    gain = big_k if summed else 1.0 / big_k
    same_window = (big_k - 1) / max(p_in - 1, 1)
    n_extra = len(node.inputs) - 1

    def backward(grad: Grad) -> list[Grad]:
        rho = 1.0 if p_out <= 1 else clip01(grad.rho + (1 - grad.rho) * same_window)
        # averaging over positions leaves the channels alone: the ones-component keeps its share
        return [Grad(grad.g * gain, rho, grad.centered, grad.ones * gain)] + [Grad(0.0)] * n_extra

    lip = math.sqrt(big_k) if summed else 1.0 / math.sqrt(big_k)
    return Step(out, backward, cause="pooling", lipschitz=[lip * math.sqrt(max(1.0, big_k * p_out / max(p_in, 1)))]
                + [0.0] * n_extra, info={"window": big_k})


@handles(g.POOL, "avg_pool", "adaptive_avg_pool")
def avg_pool(node, ins, ctx) -> Step:
    return _average(node, ins, ctx, *_window(node, ctx))


def _reduction(node, ctx) -> tuple[int, bool]:
    """(entries reduced per output, whether they are positions rather than features)."""
    si, so = ctx.in_shape(node, 0), node.out_shape
    if not si:
        raise Unsupported("reduction without shapes")
    big_k = max(1, numel(si) // max(numel(so), 1))
    so = tuple(so or ())
    # the last (feature) dim reduced alone: features; otherwise positions (tokens, pixels)
    features = len(si) >= 2 and si[:-1] == so[: len(si) - 1] and (len(so) == len(si) - 1 or so[-1:] == (1,))
    if len(si) >= 4 and si[:2] == so[:2]:
        features = False
    if len(si) >= 4 and node.attrs.get("dim") in (1, 1 - len(si)):
        features = True  # dim 1 of a feature map: channels, or branches stacked on it (timm's SelectiveKernel)
    return big_k, not features


def _feature_average(node, ins, big_k: int, summed: bool) -> Step:
    x = ins[0]
    m = (x.m + (big_k - 1) * x.mu * x.mu) / big_k
    scale2 = big_k * big_k if summed else 1.0
    out = Signal(m * scale2, x.mu * (big_k if summed else 1.0), x.c * scale2 / big_k, x.p * scale2 / big_k).clean()
    gain = big_k if summed else 1.0 / big_k
    return Step(out, lambda grad: [Grad(grad.g * gain, grad.rho)] + [Grad(0.0)] * (len(node.inputs) - 1),
                cause="pooling", lipschitz=[math.sqrt(gain)] + [0.0] * (len(node.inputs) - 1))


@handles(g.POOL, "mean", "sum")
def mean_or_sum(node, ins, ctx) -> Step:
    big_k, positions = _reduction(node, ctx)
    summed = node.op == "sum"
    if not positions:
        return _feature_average(node, ins, big_k, summed)
    # reducing positions is, in practice, global pooling (over all pixels or all tokens)
    return _average(node, ins, ctx, big_k, big_k, 1, summed)


@lru_cache(maxsize=64)
def max_of_normals(k: int) -> tuple[float, float]:
    """Mean and variance of the largest of k independent standard normals."""
    if k <= 1:
        return 0.0, 1.0
    xs, ws = gs.line_nodes(0.0, 1.0)
    dens = k * np.power(gs.norm_cdf(xs), k - 1)
    e1 = float(ws @ (xs * dens))
    e2 = float(ws @ (xs * xs * dens))
    return e1, e2 - e1 * e1


def _max(node, ins, ctx, big_k: int, p_in: int, p_out: int) -> Step:
    x = ins[0]
    e, v = max_of_normals(big_k)
    prod = ctx.producer(node, 0)
    act = activations.get(prod.op, prod.attrs) if prod.kind == g.ACTIVATION and prod.op in MONOTONE else None
    winners = 1.0
    if act is not None and prod.inputs:
        # max of phi(h_i) = phi(max h_i) for a monotone phi: pool the pre-activations
        h = ctx.signals[prod.inputs[0]]
        rho = h.rho_positions
        mean = h.mu + math.sqrt(h.var * (1 - rho)) * e
        var = h.var * rho + h.var * (1 - rho) * v
        mom = act.moments(mean, var)
        m, mu = mom.ef2, mom.ef
        # The gradient lands on the window's winners, where phi' is that of the maximum (a ReLU is
        # on there), while the activation's own backward applies the average E[phi'^2]: correct it.
        typical = act.moments(h.mu, h.var).edf2
        winners = mom.edf2 / typical if typical > 0 else 1.0
    else:
        within = max(x.m - x.p, 0.0)
        m = x.p + 2 * x.mu * math.sqrt(within) * e + within * (e * e + v)
        mu = x.mu + math.sqrt(within) * e
    out = Signal(m, mu, min(x.c, m), min(x.p, m) if p_out > 1 else m, x.s if p_out > 1 else 0.0).clean()
    share = p_out / max(p_in, 1) if p_out > 1 else 0.0
    overlap = max(1.0, big_k * p_out / max(p_in, 1))
    n_extra = len(node.inputs) - 1

    def backward(grad: Grad) -> list[Grad]:
        return [Grad(grad.g * winners, clip01(grad.rho * share), grad.centered)] + [Grad(0.0)] * n_extra

    return Step(out, backward, cause="pooling", lipschitz=[math.sqrt(overlap)] + [0.0] * n_extra,
                info={"window": big_k})


@handles(g.POOL, "max_pool", "adaptive_max_pool")
def max_pool(node, ins, ctx) -> Step:
    return _max(node, ins, ctx, *_window(node, ctx))


@handles(g.POOL, "max")
def max_reduce(node, ins, ctx) -> Step:
    big_k, _ = _reduction(node, ctx)
    return _max(node, ins, ctx, big_k, big_k, 1)


@handles(g.OTHER, "norm", "linalg_vector_norm", "vector_norm", "frobenius_norm")
def vector_norm(node, ins, ctx) -> Step:
    """||x||_2 over K entries per output (GRN's spatial norms, hand-written RMS statistics):
    sum of K squares, so E[y^2] = K m_x, and a concentrated positive value (its relative spread is
    about 1/sqrt(2K)). The gradient x_i / ||x|| has unit norm per output: G_x = G_y."""
    scal = [v for k, v in node.attrs.get("scalars", ()) or () if k in (1, "p", "ord")]
    if scal and scal[0] != 2.0:
        raise Unsupported(f"a {scal[0]:g}-norm")
    x = ins[0]
    k = max(1.0, numel(ctx.in_shape(node, 0)) / max(numel(node.out_shape), 1))
    m = k * x.m
    spread = 1.0 / (2.0 * k) if k > 1 else max(x.var / x.m, 0.0) if x.m > 0 else 0.0
    mu = math.sqrt(m * max(1.0 - spread, 0.0))
    out = Signal(m, mu, mu * mu, mu * mu).clean()
    n_extra = len(node.inputs) - 1
    return Step(out, lambda grad: [Grad(grad.g, 0.0)] + [Grad(0.0)] * n_extra, cause="normalization",
                lipschitz=[1.0] + [0.0] * n_extra, bound_is_estimate=True)


@handles(g.OTHER, "logsumexp")
def logsumexp(node, ins, ctx) -> Step:
    """log sum_k exp(x_k) (log-softmax's normalizer, a cross-entropy inside the model): at
    initialization the logits are small, so it is their mean plus log k, and its gradient, softmax(x),
    is spread evenly (energy 1/k, like a mean). Lipschitz 1 (softmax sums to 1)."""
    from .merge import _add_const

    big_k, positions = _reduction(node, ctx)
    step = _average(node, ins, ctx, big_k, big_k, 1, False) if positions else _feature_average(node, ins, big_k, False)
    step.out = _add_const(step.out, math.log(big_k)).clean()
    step.lipschitz = [1.0] + [0.0] * (len(node.inputs) - 1)
    step.bound_is_estimate = True
    step.cause = "logsumexp"
    return step
