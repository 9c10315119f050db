"""Prefix tokens: class and register tokens, which carry their own statistics and gradient.

A ViT-style model concatenates a few tokens in front of the patch tokens (``cat([cls, x], 1)``)
and often reads only them at the end (``x[:, 0]``). Those tokens are not like the others: a class
token is one learned vector, the same in every sample and often tiny at init (timm's DeiT-III draws
it with std 1e-6, CaiT's class-attention blocks carry it in a stream of its own), so a LayerNorm
divides it by its own small variance; and when the output reads only it, the whole error signal
lives on it: the patch tokens get theirs only through attention (behind LayerScale's 1e-5 or 1e-6
gamma), so the patch embedding gets far less than the stream-average statistics say.

The estimate follows such a *prefix part* of a (batch, tokens, channels) tensor beside the whole:
forward, each per-position node (linear, activation, LayerNorm/RMSNorm, add, mul, dropout) is run a
second time on the prefix's statistics; backward, the gradient's energy on the prefix (set by a
consumer that reads only the prefix tokens) goes through those per-prefix gains, and at the concat
that made the prefix it goes to the prefix's part only. A node that mixes tokens (attention, a
matmul over tokens, pooling) ends the prefix: what leaves it is spread over all tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import graph as g
from .context import numel
from .registry import Step
from .signals import Signal

# per-position ops (the same function of each token's channels)
_PER_POSITION = {g.LINEAR, g.ACTIVATION, g.ADD, g.MUL, g.DROPOUT, g.OTHER}
_TOKEN_NORMS = {"layer_norm", "rms_norm"}


@dataclass
class Prefix:
    k: int  # prefix tokens
    t: int  # all tokens
    signal: Signal  # statistics of the prefix tokens
    step: Step | None = None  # the node's handler run on the prefix's statistics (None at the origin)
    carry: tuple[bool, ...] = ()  # which inputs carry the prefix part per position
    head_input: int | None = None  # at the concat that makes it: the prefix's input (None: parameters)


def _tokens(shape) -> int | None:
    return shape[1] if shape and len(shape) == 3 else None


def origin(node: Any, ins: list[Signal], ctx: Any) -> Prefix | None:
    """A concat along the token dim of a few tokens in front of many (class/register tokens)."""
    if node.kind != g.CONCAT or node.attrs.get("dim") not in (1, -2):
        return None
    t = _tokens(node.out_shape)
    shapes = [ctx.in_shape(node, i) for i in range(len(node.inputs))]
    if t is None or any(_tokens(s) is None for s in shapes):
        return None
    if len(node.inputs) == 2 and not node.params and shapes[0][1] < shapes[1][1]:
        return Prefix(shapes[0][1], t, ins[0], head_input=0)
    if len(node.inputs) == 1 and node.params:
        k = t - shapes[0][1]
        if not 0 < k < shapes[0][1]:
            return None
        stats = [ctx.weights.stats(p) for p in node.params.values()]
        if any(s is None for s in stats):
            return None
        total = sum(s.numel for s in stats) or 1
        second = sum(s.second * s.numel for s in stats) / total
        mean = sum(s.mean * s.numel for s in stats) / total
        # learned tokens: the same vector in every sample (all of it is shared, c = p = m)
        return Prefix(k, t, Signal(second, mean, second, second).clean())
    return None


def reads_prefix(node: Any, j: int, prod: Any, pre: Prefix, ctx: Any) -> bool:
    """Whether input ``j`` of ``node`` reads only the prefix tokens of ``prod`` (``x[:, 0]``)."""
    shape = ctx.in_shape(node, j)
    out = prod.out_shape
    if not shape or not out or _tokens(out) != pre.t:
        return False
    return numel(shape) * pre.t == numel(out) * pre.k and (len(shape) == 2 or _tokens(shape) == pre.k)


def follow(node: Any, ins: list[Signal], ctx: Any, handler: Any) -> Prefix | None:
    """The prefix part of a per-position node's output, from its inputs' prefix parts."""
    if not (node.kind in _PER_POSITION or (node.kind == g.NORM and node.op in _TOKEN_NORMS)):
        return None
    t = _tokens(node.out_shape)
    found: Prefix | None = None
    carry = []
    for j, i in enumerate(node.inputs):
        pre = ctx.prefix.get(i)
        ok = pre is not None and _tokens(ctx.in_shape(node, j)) == pre.t and (found is None or found.k == pre.k)
        carry.append(ok)
        if ok:
            found = pre
    if found is None or t != found.t:
        return None
    head_ins = [ctx.prefix[i].signal if c else x for i, c, x in zip(node.inputs, carry, ins)]
    boost, n_notes = dict(ctx.skip_boost), len(ctx.assumptions)
    try:
        step = handler(node, head_ins, ctx)
    except Exception:  # noqa: BLE001 - the prefix is a refinement: without it the node stays as it was
        step = None
    finally:
        ctx.skip_boost = boost
        del ctx.assumptions[n_notes:]
    if step is None:
        return None
    return Prefix(found.k, found.t, step.out, step, tuple(carry))
