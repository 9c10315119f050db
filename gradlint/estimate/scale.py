"""Absolute scale: where the predicted forward signal or gradient leaves the model's dtype range.

``grad_ratio`` compares two layers and is blind to scale: a net whose every activation and
gradient is 1e-60 has healthy ratios, and in float32 every one of those numbers is exactly 0.
The estimate's statistics are absolute (the inputs' measured moments in, the contract's loss out:
a unit-variance error on every output element), so the RMS of every tensor can be held against
the dtype's range (``ir.dtypes``):

* forward: the RMS of a node's output, sqrt(m), below the smallest normal number (underflow), or
  its expected largest entry, RMS * sqrt(2 ln numel), above the largest finite one (overflow);
* backward: the RMS of the error signal at a node, sqrt(G / numel), and of each weight layer's
  dL/dW, against the same limits.

Structural zeros (a zero-initialized head or gate, ``Step.zero``) are zeros by design and never a
collapse. docs/estimator.md, "Absolute scale".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..ir import dtypes
from ..ir import graph as g

FORWARD, GRADIENT, WEIGHT_GRADIENT = "activations", "error signal", "weight gradient"
UNDERFLOW, OVERFLOW = "underflow", "overflow"


@dataclass
class Collapse:
    """The first place a signal leaves the dtype's range (plain data: the report keeps it)."""

    kind: str  # underflow | overflow
    signal: str  # activations | error signal | weight gradient
    dtype: str
    limit: float  # the dtype's smallest normal (underflow) or largest finite number (overflow)
    value: float  # the predicted RMS there
    node: int
    where: str  # the module (or op) where it happens
    layer: str | None  # the weight layer it belongs to: the node's own module, else the last one before it
    location: Any = None
    count: int = 1  # weight gradients: how many layers are past the limit

    def describe(self) -> str:
        """'activations: float32 underflow at layers.29 (RMS 8.1e-39 < 1.2e-38)'."""
        sign = "<" if self.kind == UNDERFLOW else ">"
        what = "RMS" if self.kind == UNDERFLOW else "largest entry"
        more = f" and {self.count - 1} more layer{'s' if self.count > 2 else ''}" if self.count > 1 else ""
        return (f"{self.signal}: {self.dtype} {self.kind} at {self.where}{more} "
                f"({what} {self.value:.1e} {sign} {self.limit:.1e})")


def collapses(ctx: Any, steps: list, bw: Any, layers: list, dtype: str) -> list[Collapse]:
    """Every way the signal leaves ``dtype``'s range, at most one per (kind, signal): the first
    node in forward order for activations, the first reached from the output for the error
    signal, and the weight layers whose dL/dW is past the limit."""
    rng = dtypes.range_of(dtype)
    graph = ctx.graph
    owner = _layer_owner(graph)
    out: list[Collapse] = []
    found: set[tuple[str, str]] = set()

    def add(kind: str, signal: str, node: Any, value: float, layer: str | None = None, count: int = 1) -> None:
        if (kind, signal) in found:
            return
        found.add((kind, signal))
        limit = rng.tiny if kind == UNDERFLOW else rng.max
        belongs = layer or owner.get(node.id)
        if node.is_weight_layer or node.module == belongs:
            where = node.module or belongs or node.op
        else:
            where = (node.module or node.op or node.kind) + (f" after {belongs}" if belongs else "")
        out.append(Collapse(kind, signal, rng.name, limit, value, node.id, where, belongs, node.location, count))

    # An exact 0.0 is never an underflow: it comes from the structure (zero weights, GL203's; an
    # output the loss never reads) or from an op the estimate could not follow, not from a positive
    # value too small for the dtype.
    # forward, in execution order: the first node whose output leaves the range
    for node in graph:
        if node.kind in (g.INPUT, g.OUTPUT) or not node.is_float or node.id in ctx.forward_zero:
            continue
        m = ctx.signals[node.id].m
        rms = math.sqrt(m) if m > 0 else 0.0
        count = _numel(node.out_shape)
        if 0.0 < rms < rng.tiny and _inputs_in_range(ctx, node, rng):
            add(UNDERFLOW, FORWARD, node, rms)
        elif count and rms * dtypes.peak_factor(count) > rng.max:
            add(OVERFLOW, FORWARD, node, rms * dtypes.peak_factor(count))

    # backward, from the outputs: the first node whose error signal leaves the range
    for node in reversed(graph.nodes):
        grad = bw.grads[node.id] if node.id < len(bw.grads) else None
        if grad is None or node.kind in (g.INPUT, g.OUTPUT) or not node.is_float or bw.zero[node.id]:
            continue
        count = _numel(node.out_shape)
        if not count:
            continue
        rms = math.sqrt(max(grad.g, 0.0) / count)
        if 0.0 < rms < rng.tiny:
            add(UNDERFLOW, GRADIENT, node, rms)
        elif rms * dtypes.peak_factor(count) > rng.max:
            add(OVERFLOW, GRADIENT, node, rms * dtypes.peak_factor(count))

    # weight gradients, in forward order (the first layer past the limit, and how many are)
    live = [ly for ly in layers if not ly.zero and not ly.unused]
    low = [ly for ly in live if 0.0 < ly.grad_rms < rng.tiny]
    high = [ly for ly in live if ly.grad_rms > rng.max]
    for kind, group in ((UNDERFLOW, low), (OVERFLOW, high)):
        if group:
            first = group[0]
            add(kind, WEIGHT_GRADIENT, graph[first.node], first.grad_rms, first.module, len(group))
    return out


def _inputs_in_range(ctx: Any, node: Any, rng: dtypes.DtypeRange) -> bool:
    """The node makes the underflow itself (its float inputs, if any, are still above the limit)."""
    floats = [i for i in node.inputs if ctx.graph[i].is_float]
    if not floats:  # made from integers (whose statistics may be unknown) or from weights alone
        return bool(node.params)
    return any(ctx.signals[i].m > 0 and math.sqrt(ctx.signals[i].m) >= rng.tiny for i in floats)


def _layer_owner(graph: Any) -> dict[int, str]:
    """node id -> the weight layer it belongs to: its own module when it is a weight layer, else the
    last weight layer executed before it (the layer whose output it transforms)."""
    out: dict[int, str] = {}
    last = None
    for node in graph:
        if node.is_weight_layer:
            last = node.module or node.op
        if last is not None:
            out[node.id] = last
    return out


def _numel(shape: Any) -> int:
    return math.prod(shape) if shape else 0


def verdict_of(found: list[Collapse]) -> str | None:
    """'underflow' or 'overflow' when the signal leaves the range (underflow first: a dead signal
    cannot also explode), else None."""
    kinds = {c.kind for c in found}
    return UNDERFLOW if UNDERFLOW in kinds else OVERFLOW if OVERFLOW in kinds else None
