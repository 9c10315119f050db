"""Attention (nn.MultiheadAttention, scaled_dot_product_attention) and softmax.

At initialization attention is close to uniform: with logit variance s^2 over T keys, a softmax
row has E[sum A^2] ~ e^{s^2} / T. The value path averages: ||A^T g||^2 ~ ||g||^2 (sum A^2
(1 - rho) + rho) for a gradient with correlation rho across tokens (docs/estimator.md); the query and
key paths go through the softmax Jacobian and are ~1/T smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ...ir import graph as g
from ..context import Unsupported
from ..registry import Step, handles
from ..signals import Grad, Signal
from .common import clip01


def sum_a2(s2: float, t: int) -> float:
    """E[sum_j A_j^2] for A = softmax of t logits with variance s2: e^{s2}/t when small, -> 1."""
    if t <= 1:
        return 1.0
    r = math.expm1(min(s2, 50.0)) / t
    return 1.0 / t + (1.0 - 1.0 / t) * (1.0 - math.exp(-r))


@lru_cache(maxsize=256)
def _causal(s2: float, t: int) -> tuple[float, float]:
    """Causal rows see t+1 keys: (mean of sum A^2 over rows, mean squared column sum)."""
    rows = [sum_a2(s2, j + 1) for j in range(t)]
    col = [0.0] * t
    for j in range(t):  # uniform weights 1/(j+1) on keys 0..j
        for k in range(j + 1):
            col[k] += 1.0 / (j + 1)
    return sum(rows) / t, sum(c * c for c in col) / t


@dataclass
class Core:
    """softmax(q k^T * scale) v for q, k, v statistics; T_q queries, T_k keys."""

    q: Signal
    k: Signal
    v: Signal
    t_q: int
    t_k: int
    dh: int
    scale2: float
    causal: bool = False
    drop: float = 0.0

    def __post_init__(self) -> None:
        self.k_var = max(self.k.m - self.k.p, 0.0)  # a part shared by all keys cancels in the softmax
        self.v_var = max(self.v.m - self.v.p, 0.0)
        self.s2 = self.dh * self.scale2 * self.q.m * self.k_var
        if self.causal and self.t_q == self.t_k:
            self.sa2, self.col2 = _causal(round(self.s2, 6), self.t_k)
        else:
            self.sa2, self.col2 = sum_a2(self.s2, self.t_k), (self.t_q / self.t_k) ** 2
        self.sa2 = min(self.sa2 / (1.0 - self.drop), 1.0 / (1.0 - self.drop))

    def out(self) -> Signal:
        v = self.v
        m = self.sa2 * self.v_var + v.p
        p = v.p + self.v_var / max(self.t_k, 1)
        return Signal(m, v.mu, v.c, min(p, m)).clean()

    def grads(self, go: Grad) -> tuple[Grad, Grad, Grad]:
        """Gradients at q, k, v from the gradient at the output (totals)."""
        rho = go.rho
        ratio = self.t_k / max(self.t_q, 1)
        gv = go.g * (self.sa2 * (1 - rho) + ratio * self.col2 * rho)
        diag = self.t_q * self.sa2 / self.t_k * (1 - rho) + self.col2 * rho
        off = self.t_q * max(1 - self.sa2, 0.0) / max(self.t_k * (self.t_k - 1), 1) * (1 - rho) + self.col2 * rho
        rho_v = clip01(off / diag) if diag > 0 else 0.0
        gs_ = go.g * self.sa2 * self.v_var  # at the logits
        gq = gs_ * self.dh * self.scale2 * self.k_var
        gk = gs_ * self.dh * self.scale2 * self.q.m
        return Grad(gq, 0.0), Grad(gk, 0.0), Grad(gv, rho_v)


def _tokens(shape, batch_first: bool) -> int:
    if not shape:
        return 1
    if len(shape) == 2:
        return shape[0]
    return shape[1] if batch_first else shape[0]


@handles(g.ATTENTION, "mha")
def multihead_attention(node, ins, ctx) -> Step:
    if not ins:
        raise Unsupported("attention without inputs")
    xq = ins[0]
    xk = ins[1] if len(ins) > 1 else xq
    xv = ins[2] if len(ins) > 2 else xk
    e = node.attrs.get("embed_dim")
    heads = node.attrs.get("num_heads") or 1
    if not isinstance(e, int):
        raise Unsupported("attention without embed_dim")
    bf = bool(node.attrs.get("batch_first"))
    t_q = _tokens(ctx.in_shape(node, 0), bf)
    t_k = _tokens(ctx.in_shape(node, 1) if len(ins) > 1 else ctx.in_shape(node, 0), bf)
    drop = node.attrs.get("dropout") if isinstance(node.attrs.get("dropout"), (int, float)) else 0.0
    if "in_proj_weight" in node.params:
        wq, wk, wv = (ctx.param(node, "in_proj_weight", i, 3) for i in range(3))
        bias = [ctx.param(node, "in_proj_bias", i, 3) for i in range(3)] if "in_proj_bias" in node.params else [None] * 3
        names = {"q": node.params["in_proj_weight"], "k": node.params["in_proj_weight"], "v": node.params["in_proj_weight"]}
    else:
        wq, wk, wv = (ctx.param(node, f"{x}_proj_weight") for x in "qkv")
        bias = [ctx.param(node, "in_proj_bias", i, 3) for i in range(3)] if "in_proj_bias" in node.params else [None] * 3
        names = {x: node.params.get(f"{x}_proj_weight") for x in "qkv"}
    wo, bo = ctx.param(node, "out_proj.weight"), ctx.param(node, "out_proj.bias")
    if None in (wq, wk, wv, wo):
        raise Unsupported("attention projection weights unknown")
    kdim = wk.shape[1] if len(wk.shape) > 1 else e

    def proj(x: Signal, w, b, n: int) -> Signal:
        b2, bm = (b.second, b.mean) if b is not None else (0.0, 0.0)
        return Signal(n * w.second * x.m + b2, bm, n * w.second * x.c + b2, n * w.second * x.p + b2).clean()

    q, k, v = proj(xq, wq, bias[0], e), proj(xk, wk, bias[1], kdim), proj(xv, wv, bias[2], wv.shape[1])
    dh = max(e // heads, 1)
    core = Core(q, k, v, t_q, t_k, dh, 1.0 / dh, drop=float(drop))
    o = core.out()
    b2o = bo.second if bo is not None else 0.0
    out = Signal(e * wo.second * o.m + b2o, 0.0, e * wo.second * o.c + b2o, e * wo.second * o.p + b2o).clean()
    so = e * wo.second
    wo_name = node.params.get("out_proj.weight")
    n_in = len(node.inputs)

    def backward(grad: Grad) -> list[Grad]:
        go = Grad(grad.g * so, grad.rho)
        gq, gk, gv = core.grads(go)
        per = [Grad(gq.g * e * wq.second, 0.0), Grad(gk.g * kdim * wk.second, 0.0),
               Grad(gv.g * wv.shape[1] * wv.second, gv.rho)]
        if n_in == 1:
            tot = sum(x.g for x in per)
            return [Grad(tot, per[2].g * per[2].rho / tot if tot > 0 else 0.0)]
        if n_in == 2:
            return [per[0], Grad(per[1].g + per[2].g, per[2].rho)]
        return per[:3] + [Grad(0.0)] * (n_in - 3)

    def weight_grads(grad: Grad) -> dict[str, float]:
        go = Grad(grad.g * so, grad.rho)
        gq, gk, gv = core.grads(go)
        energies: dict[str, float] = {}
        for nm, gg, x, t, n in ((names["q"], gq, xq, t_q, e), (names["k"], gk, xk, t_k, kdim),
                                (names["v"], gv, xv, t_k, wv.shape[1])):
            if nm:
                energies[nm] = energies.get(nm, 0.0) + gg.g * n * (x.m + (t - 1) * gg.rho * x.p)
        if wo_name:
            energies[wo_name] = grad.g * e * (o.m + (t_q - 1) * grad.rho * o.p)
        return energies

    est = math.sqrt(max(so, 0.0))
    zero = f"{node.module}'s out_proj weight is all zeros" if wo.zero else None
    return Step(out, backward, cause="attention", weight_grads=weight_grads, lipschitz=[est] * n_in,
                bound_is_estimate=True, zero=zero, info={"logit_var": core.s2, "sum_a2": core.sa2})


@handles(g.ATTENTION, "sdpa")
def sdpa(node, ins, ctx) -> Step:
    """scaled_dot_product_attention(q, k, v): (..., T, d_head) tensors, no projections."""
    if len(ins) < 3:
        raise Unsupported("attention with fewer than three tensor inputs")
    sq, sk = ctx.in_shape(node, 0), ctx.in_shape(node, 1)
    if not sq or not sk:
        raise Unsupported("attention without shapes")
    dh = sq[-1]
    scale = node.attrs.get("scale")
    scale2 = float(scale) ** 2 if isinstance(scale, (int, float)) else 1.0 / dh
    core = Core(ins[0], ins[1], ins[2], sq[-2], sk[-2], dh, scale2, causal=bool(node.attrs.get("is_causal")))
    n_in = len(node.inputs)

    def backward(grad: Grad) -> list[Grad]:
        gq, gk, gv = core.grads(grad)
        return [gq, gk, gv] + [Grad(0.0)] * (n_in - 3)

    return Step(core.out(), backward, cause="attention", lipschitz=[1.0] * n_in, bound_is_estimate=True,
                info={"logit_var": core.s2, "sum_a2": core.sa2})


def _softmax_dim(node, shape) -> int:
    d = node.attrs.get("dim")
    if not shape:
        return 1
    if isinstance(d, int) and -len(shape) <= d < len(shape):
        return shape[d]
    return shape[-1]


@handles(g.SOFTMAX, "softmax", "softmin")
def softmax(node, ins, ctx) -> Step:
    x = ins[0]
    d = max(_softmax_dim(node, ctx.in_shape(node, 0)), 1)
    sa2 = sum_a2(x.var, d)
    out = Signal(sa2 / d, 1.0 / d, 1.0 / (d * d), 1.0 / (d * d)).clean()
    gain = sa2 / d
    n = len(node.inputs)
    # a component of the gradient that is the same in every entry along the softmax's dim (a
    # selective-kernel attention's branch gates: Grad.common) is in the Jacobian's null space
    return Step(out, lambda grad: [Grad(max(grad.g - grad.common, 0.0) * gain, grad.rho)] + [Grad(0.0)] * (n - 1),
                cause="softmax", lipschitz=[0.5] + [0.0] * (n - 1))


@handles(g.SOFTMAX, "log_softmax")
def log_softmax(node, ins, ctx) -> Step:
    x = ins[0]
    d = max(_softmax_dim(node, ctx.in_shape(node, 0)), 1)
    sa2 = sum_a2(x.var, d)
    shift = math.log(d) + 0.5 * x.var
    out = Signal(x.var + shift * shift, -shift, shift * shift, shift * shift).clean()
    gain = max(1.0 - 2.0 / d + sa2, 0.0)
    n = len(node.inputs)
    return Step(out, lambda grad: [Grad(grad.g * gain, grad.rho)] + [Grad(0.0)] * (n - 1), cause="softmax",
                lipschitz=[2.0] + [0.0] * (n - 1))

