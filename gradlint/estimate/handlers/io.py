"""Model inputs and outputs: where the forward statistics start and the gradient is seeded."""

from __future__ import annotations

from ...ir import graph as g
from ..context import Unsupported, numel
from ..registry import Step, handles
from ..signals import Grad, Signal


@handles(g.INPUT)
def model_input(node, ins, ctx) -> Step:
    out = ctx.input_signal(node) if node.attrs.get("float", True) else Signal(0.0)
    return Step(out, lambda grad: [], cause="input", lipschitz=[])


@handles(g.OUTPUT)
def model_output(node, ins, ctx) -> Step:
    """The contract's loss: every element of every floating output gets a N(0, 1) error signal."""
    seeds = []
    for i, src in enumerate(node.inputs):
        floating = bool(ctx.graph[src].attrs.get("float", True))
        seeds.append(Grad(float(numel(ctx.in_shape(node, i))) if floating else 0.0, 0.0))
    out = ins[0] if ins else Signal(0.0)
    return Step(out, lambda grad: seeds, cause="output", lipschitz=[1.0] * len(node.inputs))


@handles(g.OTHER, "to_float")
def to_float(node, ins, ctx) -> Step:
    """Integers turned into floats (``t.float()``): the integers' statistics when they are a model
    input (measured like any input), else unknown. No gradient flows back into integers."""
    src = node.inputs[0] if node.inputs else None
    stats = ctx.input_signals.get(src) if src is not None and ctx.graph[src].kind == g.INPUT else None
    if stats is None:
        raise Unsupported("integer values made float whose statistics are unknown")
    n = len(node.inputs)
    return Step(stats, lambda grad: [Grad(0.0)] * n, cause="input", lipschitz=[0.0] * n)


@handles(g.OTHER, "detach")
def detach(node, ins, ctx) -> Step:
    """``x.detach()``: the same values forward, no gradient back (what feeds it never learns from
    what follows)."""
    if not ins:
        raise Unsupported("detach without an input")
    n = len(node.inputs)
    return Step(ins[0], lambda grad: [Grad(0.0)] * n, cause="detach", lipschitz=[0.0] * n)
