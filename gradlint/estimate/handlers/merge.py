"""Merges and scalings: add/sub (residuals, biases), mul/div (gates, LayerScale, ReZero), concat.

Add copies the gradient to both inputs (docs/estimator.md, "Layer rules"); a tensor read by several
consumers sums their gradients, which propagate.py does. Multiplying by a zero-initialized scale
(ReZero, SkipInit, LayerScale at 0) makes the gradient behind it exactly zero: a structural zero.
"""

from __future__ import annotations

import math

from ...ir import graph as g
from ..context import Unsupported, numel
from ..registry import Step, handles
from ..signals import Grad, Signal


def _scalars(node) -> list[float]:
    out = []
    for item in node.attrs.get("scalars", ()) or ():
        if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], (int, float)):
            out.append(float(item[1]))
    return out


def _scalar_first(node) -> bool:
    """``2 - x`` / ``2 / x``: the scalar came before the tensor."""
    for item in node.attrs.get("scalars", ()) or ():
        if isinstance(item, (tuple, list)) and item and item[0] == 0:
            return True
    return False


def _per_channel(ctx, node, pname: str) -> bool:
    """A parameter broadcast over batch and positions (a bias per channel), not a position table."""
    shape = ctx.weights.shape(pname)
    out = node.out_shape or ()
    n = numel(shape) if shape else 1
    return n == 1 or (bool(out) and (n == out[-1] or (len(out) > 1 and n == out[1])))


def _add_const(x: Signal, s: float) -> Signal:
    return Signal(x.m + 2 * x.mu * s + s * s, x.mu + s, x.c + 2 * x.mu * s + s * s, x.p + 2 * x.mu * s + s * s, x.s)


def _const_mul_source(ctx, i: int) -> int | None:
    """The input of a multiplication by a constant tensor (no scalar, no parameter), else None."""
    n = ctx.graph[i]
    if n.kind == g.MUL and n.op == "mul" and len(n.inputs) == 1 and not n.params and not n.attrs.get("scalars"):
        return n.inputs[0]
    return None


def _rotary_source(node, ctx) -> int | None:
    """``x * cos + rotate_half(x) * sin`` (rotary position embeddings): the x being rotated.

    rotate_half(x) is cat(-x2, x1) of x's halves, and the halves are aliases of x in the IR. A
    rotation preserves the norm; taken as two independent multiplications by unknown constants
    (scale 1 each) it would double the energy of every query and key.
    """
    if len(node.inputs) != 2:
        return None
    a, b = (_const_mul_source(ctx, i) for i in node.inputs)
    if a is None or b is None:
        return None
    for direct, rotated in ((a, b), (b, a)):
        cat = ctx.graph[rotated]
        if cat.kind != g.CONCAT or len(cat.inputs) != 2:
            continue
        parts = set()
        for i in cat.inputs:
            n = ctx.graph[i]
            parts.add(n.inputs[0] if n.kind == g.MUL and n.op == "neg" and n.inputs else i)
        if parts == {direct}:
            return direct
    return None


@handles(g.ADD)
def add(node, ins, ctx) -> Step:
    rotated = _rotary_source(node, ctx)
    if rotated is not None:
        x = ctx.signals[rotated]
        return Step(Signal(x.m, x.mu, x.c, x.p, x.s), lambda grad: [grad.like(grad.g * 0.5)] * 2,
                    cause="rotary embedding", lipschitz=[1.0, 1.0], info={"rotary": True})
    return _add(node, ins, ctx)


def _add(node, ins, ctx) -> Step:
    sign = -1.0 if node.op == "sub" else 1.0
    alpha = node.attrs.get("alpha")
    alpha = float(alpha) if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else 1.0
    coeffs = [1.0] + [sign * alpha] * (len(ins) - 1)
    if len(ins) == 1 and node.op == "sub" and _scalar_first(node):
        coeffs = [-1.0]
    # the same tensor twice (x + x) adds coherently
    merged: dict[int, float] = {}
    for i, c in zip(node.inputs, coeffs):
        if merged.get(i) is not None and merged[i] + c == 0.0:
            # x - x: the capture aliased a statistic of x to x itself (x - x.amax(-1, keepdim=True) before
            # a logsumexp): a shift, not a cancellation; x passes through
            ctx.assume(node, "x minus a statistic of x (a max or a mean the capture did not record): "
                             "taken as x shifted", once=True)
            continue
        merged[i] = merged.get(i, 0.0) + c
    m = mu = c_ = p = s = 0.0
    seen = []
    for src, k in merged.items():
        x = ins[node.inputs.index(src)]
        for other_k, other in seen:  # cross terms through the means only (independent weights)
            m += 2 * k * other_k * x.mu * other.mu
            c_ += 2 * k * other_k * x.mu * other.mu
            p += 2 * k * other_k * x.mu * other.mu
        m += k * k * x.m
        c_ += k * k * x.c
        p += k * k * x.p
        s += k * k * x.s
        mu += k * x.mu
        seen.append((k, x))
    out = Signal(m, mu, c_, p, s)
    for pname in (v for r, v in node.params.items()):
        st = ctx.weights.stats(pname)
        if st is None:
            ctx.assume(node, f"added parameter {pname} has unknown values (meta device): ignored")
            continue
        both = 2 * out.mu * st.mean
        per_channel = _per_channel(ctx, node, pname)
        shared = st.second if per_channel else st.mean ** 2
        pattern = 0.0 if per_channel else max(st.second - st.mean ** 2, 0.0)  # a position table
        out = Signal(out.m + st.second + both, out.mu + st.mean, out.c + shared + both, out.p + shared + both,
                     out.s + pattern)
    for s in _scalars(node):
        out = _add_const(out, s if not (node.op == "sub" and not _scalar_first(node)) else -s)
    out = out.clean()
    if len(merged) > 1 and out.m > 0 and out.mu * out.mu > 0.5 * out.m:
        # Known limit (benchmarks/RESULTS.md): a positive mean piling up in an unnormalized residual
        # stream gives the gradient a component along it that grows faster than mean-field says.
        ctx.assume(node, "the residual stream is mostly a constant offset (positive-mean activations with no "
                         "normalization): mean-field underestimates the gradient's growth through these blocks, "
                         "so earlier layers likely get more gradient than estimated", once=True)
    first_pos = {src: node.inputs.index(src) for src in merged}

    def backward(grad: Grad) -> list[Grad]:
        res = [Grad(0.0)] * len(node.inputs)
        for src, k in merged.items():
            res[first_pos[src]] = grad.like(grad.g * k * k)
        boost = ctx.skip_boost.get(node.id)  # the skip path of a ReLU residual stream (activation.py)
        if boost is not None and boost[0] < len(res):
            res[boost[0]] = res[boost[0]].scaled(boost[1])
        return res

    lips = [0.0] * len(node.inputs)
    for src, k in merged.items():
        lips[first_pos[src]] = abs(k)
    return Step(out, backward, cause="merge", lipschitz=lips)


def _fourth(x: Signal) -> float:
    """E[x^4] of a Gaussian with x's mean and variance."""
    v = x.var
    return 3 * v * v + 6 * x.mu * x.mu * v + x.mu ** 4


@handles(g.MUL)
def mul(node, ins, ctx) -> Step:
    if not ins:
        raise Unsupported("mul without a tensor input")
    if node.op == "neg":
        x = ins[0]
        return Step(Signal(x.m, -x.mu, x.c, x.p), lambda grad: [grad] + [Grad(0.0)] * (len(ins) - 1),
                    cause="scaling", lipschitz=[1.0] * len(ins))
    div = node.op == "div"
    if len(ins) >= 2:
        return _mul_tensors(node, ins, ctx, div)
    x = ins[0]
    k2, k, what, zero = 1.0, 1.0, "", None
    scalars = _scalars(node)
    if scalars:
        s = scalars[0]
        if div and _scalar_first(node):
            raise Unsupported("scalar divided by a tensor")
        k = 1.0 / s if div else s
        k2 = k * k
        what = f"x {'/' if div else '*'} {s:g}"
    elif node.params:
        pname = next(iter(node.params.values()))
        st = ctx.weights.stats(pname)
        if st is None:
            ctx.assume(node, f"scale {pname} has unknown values (meta device): taken as 1")
        else:
            if div:
                if st.zero:
                    raise Unsupported(f"division by the zero parameter {pname}")
                k2, k = 1.0 / st.second, 1.0 / st.mean if st.mean else 0.0
            else:
                k2, k = st.second, st.mean
            what = pname
            if st.zero:
                zero = f"{pname} is zero-initialized (a ReZero/SkipInit/LayerScale-style gate)"
    else:
        ctx.assume(node, f"{'division' if div else 'multiplication'} by a constant tensor (a mask, a rotary "
                         "embedding's cos/sin) taken as scale 1", once=True)
    out = x.scaled(k2, k).clean()
    return Step(out, lambda grad: [grad.like(grad.g * k2)], cause="scaling",
                lipschitz=[math.sqrt(k2)], zero=zero, info={"scale": what})


def _mul_tensors(node, ins, ctx, div: bool) -> Step:
    a, b = ins[0], ins[1]
    extra = len(ins) - 2
    if node.inputs[0] == node.inputs[1] and not div:  # x * x
        m4 = _fourth(a)
        out = Signal(m4, a.m, a.c * a.c / max(a.m, 1e-300) * a.m, a.p * a.p / max(a.m, 1e-300) * a.m).clean()
        return Step(out, lambda grad: [Grad(grad.g * 4 * a.m, grad.rho), Grad(0.0)] + [Grad(0.0)] * extra,
                    cause="scaling", lipschitz=[2 * math.sqrt(a.m), 0.0] + [0.0] * extra, bound_is_estimate=True)
    out_n = numel(node.out_shape)
    na, nb = numel(ctx.in_shape(node, 0)), numel(ctx.in_shape(node, 1))
    if div:
        # a / b with b a positive statistic (a norm): the delta method, 1/b ~ 1/E[b]
        if b.m <= 0:
            raise Unsupported("division by a tensor that is zero")
        inv2 = 1.0 / b.m
        out = Signal(a.m * inv2, a.mu * math.sqrt(inv2), a.c * inv2, a.p * inv2).clean()

        def backward_div(grad: Grad) -> list[Grad]:
            return [Grad(grad.g * inv2, grad.rho),
                    Grad(grad.g * a.m * inv2 * inv2, 0.0)] + [Grad(0.0)] * extra

        return Step(out, backward_div, cause="scaling", lipschitz=[math.sqrt(inv2), math.sqrt(a.m) * inv2] + [0.0] * extra,
                    bound_is_estimate=True)
    shared = (a.c + a.s) * (b.c + b.s) - a.c * b.c
    out = Signal(a.m * b.m, a.mu * b.mu, a.c * b.c, a.p * b.p, shared).clean()

    branch_gate = [_branch_gate(node, ctx, i) for i in (0, 1)]

    def reduced(g_out: Grad, other: Signal, n_self: int, gate: bool) -> Grad:
        """Gradient into a broadcast operand: summed over the R entries it was repeated to. The
        coherent part from the other operand's mean is the same for every branch's gate of a
        selective-kernel attention (``Grad.common``)."""
        r = max(out_n // max(n_self, 1), 1)
        coh = other.p / other.m if other.m > 0 else 0.0
        total = g_out.g * other.m * (1.0 + (r - 1) * g_out.rho * coh)
        common = g_out.g * (r - 1) * g_out.rho * min(other.mu * other.mu, other.p) if gate else 0.0
        return Grad(total, g_out.rho, common=min(common, total))

    def backward(grad: Grad) -> list[Grad]:
        return [reduced(grad, b, na, branch_gate[0]), reduced(grad, a, nb, branch_gate[1])] + [Grad(0.0)] * extra

    return Step(out, backward, cause="gating", lipschitz=[math.sqrt(b.m), math.sqrt(a.m)] + [0.0] * extra,
                bound_is_estimate=True)


def _branch_gate(node, ctx, i: int) -> bool:
    """Whether input ``i`` of the product ``node`` is a broadcast gate whose product is summed with
    another product gated by the same tensor: ``sum(a_r * x_r)`` with every ``a_r`` a view of one
    softmax over branches (SKNet, ResNeSt's split attention)."""
    if numel(ctx.in_shape(node, i)) >= numel(node.out_shape):
        return False
    gate = node.inputs[i]
    if _summed_over_gate_axis(node, ctx, i):
        return True
    top = node
    for _ in range(16):  # up the chain of additions (sum() of a list adds one term at a time)
        readers = ctx.readers(top.id)
        if len(readers) != 1 or ctx.graph[readers[0][0]].kind != g.ADD:
            break
        top = ctx.graph[readers[0][0]]
    if top is node:
        return False
    stack, terms = [top], []
    while stack and len(terms) < 64:  # down again: every term of that sum
        for j in stack.pop().inputs:
            (stack if ctx.graph[j].kind == g.ADD else terms).append(ctx.graph[j])
    # the capture aliases views away: every split of one softmax is the same input node
    return any(t.id != node.id and t.kind == g.MUL and gate in t.inputs for t in terms)


def _summed_over_gate_axis(node, ctx, i: int) -> bool:
    """``(x * a).sum(dim)`` with the branches stacked along ``dim`` and ``a`` spanning it (timm's
    SelectiveKernel: x (B, paths, C, H, W), a (B, paths, C, 1, 1))."""
    readers = ctx.readers(node.id)
    if len(readers) != 1:
        return False
    red = ctx.graph[readers[0][0]]
    so, sr, sg = tuple(node.out_shape or ()), tuple(red.out_shape or ()), tuple(ctx.in_shape(node, i) or ())
    if red.kind != g.POOL or red.op not in ("sum", "mean") or len(sg) != len(so) or not so:
        return False
    for axis in range(len(so)):
        rest = so[:axis] + so[axis + 1:]
        if (sr == rest or sr == so[:axis] + (1,) + so[axis + 1:]) and so[axis] > 1 and sg[axis] == so[axis]:
            return True
    return False


@handles(g.CONCAT)
def concat(node, ins, ctx) -> Step:
    """Size-weighted average of the second moments; each part gets its share of the gradient."""
    sizes = [numel(ctx.in_shape(node, i)) for i in range(len(ins))]
    total = sum(sizes) or 1
    f = [s / total for s in sizes]
    out = Signal(sum(w * x.m for w, x in zip(f, ins)), sum(w * x.mu for w, x in zip(f, ins)),
                 sum(w * x.c for w, x in zip(f, ins)), sum(w * x.p for w, x in zip(f, ins)),
                 sum(w * x.s for w, x in zip(f, ins))).clean()
    return Step(out, lambda grad: [grad.like(grad.g * w) for w in f], cause="concatenation",
                lipschitz=[1.0] * len(ins))
