"""Model inputs and outputs: where the forward statistics start and the gradient is seeded."""

from __future__ import annotations

from ...ir import graph as g
from ..context import numel
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
