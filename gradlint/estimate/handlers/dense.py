"""Weight layers: Linear, Bilinear, ConvNd, ConvTransposeNd, Embedding, and matmul of two
activations.

For y = W x + b with n inputs per output (fan-in, or C_in/groups * kernel for a conv):
forward ``m_y = n E[W^2] m_x + E[b^2]``; backward total-norm gain ``n E[W^2]`` (= sigma_w^2);
weight gradient ``||dL/dW||^2 = G_y n (m_x + (P - 1) rho_y p_x)`` for P positions sharing the
weight — the second term is large after global average pooling, where the gradient is the same
at every position of a sample.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np

from ...ir import graph as g
from ..context import Unsupported, numel
from ..registry import Step, handles
from ..signals import Grad, Signal
from .common import clip01


def _affine(x: Signal, n: float, w2: float, wmean: float, b2: float, bmean: float) -> Signal:
    """Statistics of W x + b with n inputs per output (independent weights)."""
    shared = (n * wmean) ** 2 * x.mu * x.mu  # a nonzero weight mean turns the input mean into signal
    return Signal(n * w2 * x.m + shared + b2, n * wmean * x.mu + bmean,
                  n * w2 * x.c + shared + b2, n * w2 * x.p + shared + b2, n * w2 * x.s).clean()


def input_energy(x: Signal, grad: Grad, positions: int) -> float:
    """E||dL/dW||^2 / (G_y * n): the input's second moment plus the cross terms of positions that
    share a coherent gradient. A centered gradient (after BatchNorm's backward) sums to zero over
    the batch and positions, so the input's per-channel constant drops out of both terms."""
    k = grad.centered * x.c
    return max(x.m - k, 0.0) + (positions - 1) * grad.rho * max(x.p - k, 0.0)


def _branch_echo(node, ctx, x: Signal, sigma2: float, ratio: float) -> tuple[int, float] | None:
    """(add node, k) when this layer is the whole branch of an unnormalized residual block
    ``x + phi(W x + b)``: phi's mask follows the row sums s_j of W (the input's mean mu pushes h_j by
    mu s_j), so W^T diag(phi') has a mean part along the all-ones direction and sends the
    ones-component of the block's output gradient back coherently, k times it:
    k = sqrt(n_out/n_in) Cov(s, h) E[phi''(h)] = sqrt(n_out/n_in) sigma_w^2 mu_x E[phi''(h)] (Stein).
    He-init ReLU on a mean-dominated stream: k = 1/sqrt(pi) = 0.56, so the ones-component grows
    (1 + k)^2 = 2.4x per block instead of mean field's 2x. docs/estimator.md, "Merge"."""
    if not x.mu or not node.inputs:
        return None
    src = node.inputs[0]
    cur, act = node, None
    for _ in range(4):
        readers = ctx.readers(cur.id)
        if len(readers) != 1:
            return None
        nxt = ctx.graph[readers[0][0]]
        if nxt.kind == g.ADD and act is not None:
            if src in nxt.inputs and len(set(nxt.inputs)) == 2 and not nxt.params:
                break
            return None
        if nxt.kind == g.DROPOUT or (nxt.kind == g.ACTIVATION and nxt.op == "identity"):
            cur = nxt
            continue
        if nxt.kind == g.ACTIVATION and act is None and nxt.inputs:
            act, cur = nxt, nxt
            continue
        return None
    else:
        return None
    from .. import activations

    phi = activations.get(act.op, act.attrs)
    if phi is None:
        return None
    h = ctx.signals[act.inputs[0]]
    sd = max(h.var, 1e-300) ** 0.5
    step = 1e-3 * sd
    d2 = (phi.moments(h.mu + step, h.var).edf - phi.moments(h.mu - step, h.var).edf) / (2 * step)
    k = math.sqrt(max(ratio, 0.0)) * sigma2 * x.mu * d2
    return (nxt.id, k) if math.isfinite(k) and abs(k) > 1e-6 else None


def _lazy_echo(node, ctx, x: Signal, sigma2: float, ratio: float):
    """``_branch_echo`` once the forward is done (it reads the downstream activation's input)."""
    memo: list = []

    def echo() -> tuple[int, float] | None:
        if not memo:
            try:
                memo.append(_branch_echo(node, ctx, x, sigma2, ratio))
            except (ArithmeticError, ValueError, IndexError):
                memo.append(None)
        return memo[0]

    return echo


def _weight_and_bias(node, ctx):
    w = ctx.param(node, "weight")
    if w is None:
        raise Unsupported(f"statistics of {node.module or node.op}'s weight are unknown")
    b = ctx.param(node, "bias")
    return w, b


def _bias(b) -> tuple[float, float]:
    return (b.second, b.mean) if b is not None else (0.0, 0.0)


def _zero_reason(node, w) -> str | None:
    return f"{node.module or 'a weight'}'s weight is all zeros (zero-initialized)" if w.zero else None


@handles(g.LINEAR, "linear")
def linear(node, ins, ctx) -> Step:
    x = ins[0]
    w, b = _weight_and_bias(node, ctx)
    in_shape, out_shape = ctx.in_shape(node, 0), node.out_shape
    n_in = in_shape[-1] if in_shape else w.fan_in
    n_out = out_shape[-1] if out_shape else w.shape[0]
    b2, bmean = _bias(b)
    out = _affine(x, n_in, w.second, w.mean, b2, bmean)
    sigma2 = n_in * w.second
    positions = ctx.positions(out_shape, n_out)
    wname = ctx.param_name(node, "weight")

    echo = _lazy_echo(node, ctx, x, sigma2, n_out / max(n_in, 1))

    def backward(grad: Grad) -> list[Grad]:
        gx = grad.g * sigma2  # a random W spreads the gradient: 1/n_in of it along the all-ones direction
        return [Grad(gx, grad.rho, grad.centered, gx / max(n_in, 1), echo())] + [Grad(0.0)] * (len(node.inputs) - 1)

    def weight_grads(grad: Grad) -> dict[str, float]:
        return {wname: grad.g * n_in * input_energy(x, grad, positions)}

    return Step(out, backward, cause="weights", weight_grads=weight_grads,
                lipschitz=[ctx.spectral(node, "weight", (n_out, n_in))] + [0.0] * (len(node.inputs) - 1),
                zero=_zero_reason(node, w), info={"sigma_w2": sigma2, "init": w.source})


@handles(g.LINEAR, "bilinear")
def bilinear(node, ins, ctx) -> Step:
    if len(ins) < 2:
        raise Unsupported("bilinear with one tensor input")
    x1, x2 = ins[0], ins[1]
    w, b = _weight_and_bias(node, ctx)
    n1, n2 = w.shape[1], w.shape[2]
    b2, bmean = _bias(b)
    m = n1 * n2 * w.second * x1.m * x2.m + b2
    out = Signal(m, bmean, b2 + n1 * n2 * w.second * x1.c * x2.c, b2 + n1 * n2 * w.second * x1.p * x2.p).clean()
    k = n1 * n2 * w.second
    wname = ctx.param_name(node, "weight")

    def backward(grad: Grad) -> list[Grad]:
        return [Grad(grad.g * k * x2.m, grad.rho), Grad(grad.g * k * x1.m, grad.rho)] + [Grad(0.0)] * (len(ins) - 2)

    return Step(out, backward, cause="weights",
                weight_grads=lambda grad: {wname: grad.g * n1 * n2 * x1.m * x2.m},
                lipschitz=[math.sqrt(k * x2.m), math.sqrt(k * x1.m)] + [0.0] * (len(ins) - 2), bound_is_estimate=True,
                zero=_zero_reason(node, w), info={"sigma_w2": k})


def _tuple(v, nd: int, default: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * nd
    if isinstance(v, tuple) and len(v) == nd and all(isinstance(a, int) for a in v):
        return v
    return (default,) * nd


def valid_fraction(size_in: int, size_out: int, k: int, stride: int, dilation: int) -> tuple[float, float]:
    """(share of (output position, tap) pairs that land on a real input rather than zero padding,
    mean over taps of the squared share of positions where the tap is valid).

    The first scales the second moment: docs/estimator.md, 3x3 with pad 1 on a 4x4 map keeps
    ((3H-2)/(3H))^2 = 0.69. The second scales the per-channel constant: a channel's mean over
    positions sees tap k at a fraction v_k of them, so a constant input offset gives
    sum_k v_k^2 of energy, not sum_k v_k; the difference is an offset that varies with the
    position (corners see 4 of 9 taps) and that BatchNorm counts as variance.
    The padding is inferred from the shapes (functional convs and 'same' padding alike).
    """
    if size_out <= 0:
        return 1.0, 1.0
    span = dilation * (k - 1) + 1
    pad = max(0, math.ceil(((size_out - 1) * stride + span - size_in) / 2))
    o = np.arange(size_out)[:, None] * stride - pad + np.arange(k)[None, :] * dilation
    valid = (o >= 0) & (o < size_in)
    per_tap = valid.mean(axis=0)
    return float(valid.mean()), float(np.mean(per_tap * per_tap))


STEADY_MAX = 512  # positions: a longer sequence is taken at this size (keep factor within 1e-3)


@lru_cache(maxsize=512)
def steady_fraction(size: int, k: int, dilation: int) -> float:
    """Valid share of taps once the energy profile has settled (stride 1, 'same' padding).

    Through a stack of padded convs the signal and the gradient concentrate away from the
    borders: the profile converges to the Perron vector of the banded 0/1 matrix of valid taps,
    whose eigenvalue / k is the per-layer keep factor (4x4 map, 3x3: 0.873 per dim against the
    uniform 0.833; the difference compounds over depth). The eigenvalue grows with the size
    towards k (interlacing); past ``STEADY_MAX`` positions it is within 1e-3 of its limit (dilation 9;
    1e-5 undilated), and the
    dense eigensolver (cubic in the size: 40 s at 4096 positions) is not worth it.
    """
    size = min(size, STEADY_MAX)
    idx = np.arange(size)
    half = dilation * (k - 1) // 2
    offs = np.arange(k) * dilation - half
    a = np.zeros((size, size))
    for o in offs:
        j = idx + o
        ok = (j >= 0) & (j < size)
        a[idx[ok], j[ok]] = 1.0
    return float(np.max(np.linalg.eigvalsh(0.5 * (a + a.T)))) / k


_PASS_THROUGH = (g.ACTIVATION, g.NORM, g.DROPOUT)


def _same_conv(n) -> bool:
    return n.kind == g.CONV and n.in_shapes and n.out_shape is not None and n.in_shapes[0] is not None \
        and tuple(n.in_shapes[0][2:]) == tuple(n.out_shape[2:])


def profile_settled(ctx, node) -> tuple[bool, bool]:
    """(the input signal, the output gradient) come straight from another padded conv, through
    elementwise ops only. A merge (the skip path of a residual block), pooling or a model input
    in between keeps the profile flat."""
    cur = ctx.producer(node, 0)
    for _ in range(16):
        if cur.kind in _PASS_THROUGH and cur.inputs:
            cur = ctx.graph[cur.inputs[0]]
        else:
            break
    forward = _same_conv(cur)
    nid = node.id
    backward = False
    for _ in range(16):
        readers = ctx.readers(nid)
        if len(readers) != 1:
            break
        n = ctx.graph[readers[0][0]]
        if _same_conv(n):
            backward = True
            break
        if n.kind not in _PASS_THROUGH:
            break
        nid = n.id
    return forward, backward


def _zero_gain(node, ctx) -> str | None:
    """A weight-standardized conv (timm's ScaledStdConv2d in NFNets) multiplies its standardized
    weight by a learned ``gain``; zero-initialized (``zero_init_last``), the effective weight is 0."""
    if not node.attrs.get("weight_standardized"):
        return None
    gain = ctx.param(node, "gain")
    if gain is None or not gain.zero:
        return None
    return f"{node.module or 'a weight-standardized conv'}'s gain is all zeros (zero-initialized)"


def _standardized(node, ctx, w):
    """(the effective weight's statistics, the factor from its gradient energy to the raw weight's)
    for a weight-standardized conv: W_eff = a (W - mean_row) / std_row with a = gain * scale
    (timm's ScaledStdConv2d: scale = gamma / sqrt(fan_in); StdConv2d and hand-written ones: a = 1).
    Each row of W_eff has mean 0 and second moment a^2 whatever the init; the backward divides by
    std_row and projects out the row's mean and W_hat directions: (a^2 / std_row^2) (1 - 2/fan).
    (Qiao et al. 2019, Weight Standardization; Brock et al. 2021, NFNets.)"""
    gain = ctx.param(node, "gain")
    scale = node.attrs.get("scale")
    a2 = (gain.second if gain is not None else 1.0) * (float(scale) ** 2 if isinstance(scale, (int, float)) else 1.0)
    eff = dataclasses.replace(w, second=a2, mean=0.0, zero=a2 == 0.0, source=f"{w.source}, standardized per output channel")
    fan = max(w.fan_in, 1)
    inv_var = None
    t = ctx.weights.tensor(ctx.param_name(node, "weight") or "")
    if t is not None and t.dim() >= 2:
        import torch

        with torch.no_grad():
            rows = t.detach().double().reshape(t.shape[0], -1)
            var = rows.var(dim=1, unbiased=False)
            eps = node.attrs.get("eps")
            var = var + (float(eps) if isinstance(eps, (int, float)) else 0.0)
            if bool((var > 0).all()):
                inv_var = float((1.0 / var).mean())
    if inv_var is None:
        var = max(w.second - w.mean * w.mean, 0.0)
        inv_var = 1.0 / var if var > 0 else 0.0
    return eff, a2 * inv_var * max(1.0 - 2.0 / fan, 0.0)


@handles(g.CONV)
def conv(node, ins, ctx) -> Step:
    x = ins[0]
    w, b = _weight_and_bias(node, ctx)
    gain_zero = _zero_gain(node, ctx)
    raw_factor = 1.0  # dL/dW energy of the raw weight per unit of the effective weight's
    if gain_zero:  # the effective weight gain * standardize(W) is 0, and so is dL/dW through it
        w = dataclasses.replace(w, second=0.0, mean=0.0, zero=True)
    elif node.attrs.get("weight_standardized"):
        w, raw_factor = _standardized(node, ctx, w)
        # each row of the standardized weight sums to zero: an input offset shared by every channel
        # and tap (the mean after GroupNorm + ReLU: 0.16 of its 0.5) never reaches the output
        mu2 = x.mu * x.mu
        x = Signal(x.m - mu2, 0.0, x.c - mu2, x.p - mu2, x.s, x.dist).clean()
    in_shape, out_shape = ctx.in_shape(node, 0), node.out_shape
    kernel = tuple(w.shape[2:])
    nd = len(kernel)
    if not in_shape or not out_shape or len(in_shape) < nd + 1:
        raise Unsupported("conv without input/output shapes")
    stride = _tuple(node.attrs.get("stride"), nd, 1)
    dilation = _tuple(node.attrs.get("dilation"), nd, 1)
    valid, valid2, valid_back, flat = 1.0, 1.0, 1.0, 1.0
    settled_in, settled_out = profile_settled(ctx, node)
    for d in range(nd):
        size_in, size_out = in_shape[-nd + d], out_shape[-nd + d]
        v, v2 = valid_fraction(size_in, size_out, kernel[d], stride[d], dilation[d])
        steady = v
        if stride[d] == 1 and size_in == size_out and kernel[d] % 2 == 1 and v < 1.0:
            steady = steady_fraction(size_in, kernel[d], dilation[d])
        valid *= steady if settled_in else v
        valid_back *= steady if settled_out else v
        valid2 *= v2
        flat *= v
    fan = w.fan_in  # C_in / groups * prod(kernel)
    n_eff = fan * valid  # for what varies over samples (its profile may have settled away from borders)
    b2, bmean = _bias(b)
    out = _affine(x, n_eff, w.second, w.mean, b2, bmean)
    # A per-channel constant is flat over positions: the output keeps sum_k v_k^2 of it as a
    # constant and the rest (sum_k v_k - v_k^2) as a border pattern (see valid_fraction).
    k = fan * w.second
    out = Signal(out.m - n_eff * w.second * x.c + k * flat * x.c, out.mu,
                 k * valid2 * x.c + (out.c - n_eff * w.second * x.c),
                 k * valid2 * x.c + (out.p - n_eff * w.second * x.c),
                 out.s + k * max(flat - valid2, 0.0) * x.c).clean()
    sigma2 = fan * valid_back * w.second  # the backward sees the gradient's own profile
    c_out = w.shape[0]
    positions = max(1, numel(out_shape[-nd:]))
    # A gradient that is the same at every position stays so through the conv's backward, except
    # where zero padding drops taps (the same sum v_k^2 / sum v_k as the forward constant), and a
    # strided conv sends it to a subset of the input positions.
    shrink = (valid2 / valid if valid > 0 else 1.0) / math.prod(stride)
    wname = ctx.param_name(node, "weight")

    c_in = in_shape[1] if len(in_shape) > nd else 1
    echo = _lazy_echo(node, ctx, x, sigma2, c_out / max(c_in, 1))

    def backward(grad: Grad) -> list[Grad]:
        gx = grad.g * sigma2
        return [Grad(gx, clip01(grad.rho * shrink), grad.centered, gx / max(c_in, 1), echo())] \
            + [Grad(0.0)] * (len(node.inputs) - 1)

    def weight_grads(grad: Grad) -> dict[str, float]:
        return {wname: 0.0 if gain_zero else grad.g * n_eff * input_energy(x, grad, positions) * raw_factor}

    info = {"sigma_w2": sigma2, "valid": valid, "init": w.source}
    if gain_zero:
        info["own_zero"] = gain_zero  # its own dL/dW is 0 too
    return Step(out, backward, cause="weights", weight_grads=weight_grads,
                lipschitz=[ctx.spectral(node, "weight", (c_out, fan), taps=math.prod(kernel))]
                + [0.0] * (len(node.inputs) - 1),
                zero=gain_zero or _zero_reason(node, w), info=info)


@handles(g.CONV_TRANSPOSE)
def conv_transpose(node, ins, ctx) -> Step:
    """Weight (C_in, C_out/groups, *k): each output sees (C_in/groups) prod(k) / prod(stride)
    inputs on average (docs/estimator.md pitfall 3: torch's fan_in is not the true n_eff)."""
    x = ins[0]
    w, b = _weight_and_bias(node, ctx)
    in_shape, out_shape = ctx.in_shape(node, 0), node.out_shape
    kernel = tuple(w.shape[2:])
    nd = len(kernel)
    if not in_shape or not out_shape:
        raise Unsupported("transposed conv without shapes")
    groups = node.attrs.get("groups") if isinstance(node.attrs.get("groups"), int) else 1
    c_in = w.shape[0]
    p_in, p_out = numel(in_shape[-nd:]), numel(out_shape[-nd:])
    n_eff = (c_in / groups) * math.prod(kernel) * p_in / max(p_out, 1)
    b2, bmean = _bias(b)
    out = _affine(x, n_eff, w.second, w.mean, b2, bmean)
    phases = max(1.0, p_out / max(p_in, 1))
    if phases > 1.0:
        # with stride s the outputs fall into prod(s) phases, each made by its own subset of taps: an
        # input constant becomes a different constant per phase, i.e. a periodic pattern (a
        # checkerboard), shared within a phase only. Two positions of one sample share it with
        # probability 1/phases; two samples at one position always (it moves from c to s).
        k = n_eff * w.second
        spread = 1.0 - 1.0 / phases
        out = Signal(out.m, out.mu, out.c - k * x.c * spread, out.p - k * x.p * spread,
                     out.s + k * x.c * spread).clean()
    sigma2 = n_eff * w.second
    wname = ctx.param_name(node, "weight")

    def backward(grad: Grad) -> list[Grad]:
        return [grad.like(grad.g * sigma2)] + [Grad(0.0)] * (len(node.inputs) - 1)

    def weight_grads(grad: Grad) -> dict[str, float]:
        return {wname: grad.g * n_eff * input_energy(x, grad, p_in)}

    return Step(out, backward, cause="weights", weight_grads=weight_grads,
                lipschitz=[ctx.spectral(node, "weight", (c_in, w.numel // c_in), taps=1)]
                + [0.0] * (len(node.inputs) - 1),
                zero=_zero_reason(node, w), info={"sigma_w2": sigma2, "init": w.source})


@handles(g.EMBEDDING)
def embedding(node, ins, ctx) -> Step:
    """A row lookup: the output has the rows' second moment; each looked-up row's gradient is the
    gradient of its output position (||dL/dW||^2 = G_y for distinct ids)."""
    w = ctx.param(node, "weight")
    if w is None:
        raise Unsupported("embedding weight statistics unknown")
    bag = 1.0
    if node.op == "embedding_bag":
        shape = ctx.in_shape(node, 0)
        length = shape[-1] if shape and len(shape) == 2 else 1
        bag = length if node.attrs.get("mode") == "sum" else 1.0 / length
    rows = w.shape[0] if w.shape else 1
    var_row_mean = max(w.second - w.mean ** 2, 0.0) / max(rows, 1)
    out = Signal(w.second * bag, w.mean, w.mean ** 2 + var_row_mean, w.mean ** 2 + var_row_mean).clean()
    scale = node.attrs.get("output_scale")
    s2 = float(scale) ** 2 if isinstance(scale, (int, float)) else 1.0
    if s2 != 1.0:  # a subclass scaling its rows (Gemma: sqrt(hidden_size))
        out = out.scaled(s2, float(scale))
    wname = ctx.param_name(node, "weight")
    n = len(node.inputs)
    per_row = (bag if bag < 1 else 1.0) * s2

    return Step(out, lambda grad: [Grad(0.0)] * n, cause="weights",
                weight_grads=lambda grad: {wname: grad.g * per_row}, lipschitz=[0.0] * n,
                info={"init": w.source})


def _softmax_behind(ctx, node) -> bool:
    """Whether the left operand is softmax probabilities, possibly through attention dropout
    (timm's ``attn_drop``, an identity at p = 0, sits between the softmax and ``@ v``)."""
    src = ctx.producer(node, 0)
    for _ in range(4):
        if src.kind == g.SOFTMAX:
            return True
        if not src.inputs or not (src.kind == g.DROPOUT or (src.kind == g.ACTIVATION and src.op == "identity")):
            return False
        src = ctx.graph[src.inputs[0]]
    return False


@handles(g.MATMUL)
def matmul(node, ins, ctx) -> Step:
    """y = a @ b of two activations (attention scores, probs @ v): n = the contracted size."""
    if len(ins) < 2:
        raise Unsupported("matmul of one tensor with a constant")
    a, b = ins[0], ins[1]
    sa, sb = ctx.in_shape(node, 0), ctx.in_shape(node, 1)
    if not sa or not sb:
        raise Unsupported("matmul without shapes")
    n = sa[-1]
    rows = sa[-2] if len(sa) >= 2 else 1
    # softmax rows sum to one: their mean (1/n) makes the product an average of b's rows
    from_softmax = _softmax_behind(ctx, node)
    cross_b = b.p if from_softmax else b.mu * b.mu
    m = n * a.m * b.m + n * (n - 1) * (a.mu * a.mu) * cross_b
    out = Signal(m, n * a.mu * b.mu, n * a.c * b.c, n * a.p * b.p + n * (n - 1) * a.mu * a.mu * cross_b).clean()
    cross_a = a.mu * a.mu if from_softmax else a.p

    def backward(grad: Grad) -> list[Grad]:
        ga = grad.g * n * b.m
        gb = grad.g * n * (a.m * (1 - grad.rho) + rows * cross_a * grad.rho) if a.m > 0 else 0.0
        diag = rows * a.m * (1 - grad.rho) + rows * rows * cross_a * grad.rho
        coh = (rows * cross_a * (1 - grad.rho) + rows * rows * cross_a * grad.rho) / diag if diag > 0 else 0.0
        return [Grad(ga, grad.rho), Grad(gb, clip01(coh))] + [Grad(0.0)] * (len(ins) - 2)

    return Step(out, backward, cause="attention", lipschitz=[math.sqrt(n * b.m), math.sqrt(n * a.m)]
                + [0.0] * (len(ins) - 2), bound_is_estimate=True)
