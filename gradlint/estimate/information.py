"""Information flow: how alike two different inputs' activations become, layer after layer.

Mean-field theory propagates the correlation between two inputs' pre-activations beside their
variance (the c-map of Poole et al. 2016 and Schoenholz et al. 2017). In the *ordered phase* the
correlation goes to 1: a bias that dominates the weights' contribution, or an activation that
squashes, maps every input to nearly the same activations, so the output (and the loss) can no
longer tell the inputs apart, however healthy the gradient ratio looks.

The estimate already carries that correlation: ``Signal.c`` (+ ``s`` for the part shared at one
position) is E[x_a x_b] for two different samples, ``m`` is E[x^2], so the expected cosine
similarity of two samples' activations is (c + s) / m and

    distinct = 1 - cosine = (m - c - s) / m

is the share of the energy that differs between samples. Averaging over positions (pooling,
attention, mean/sum, softmax) also lowers ``distinct`` when the inputs are noise, without losing
anything a real input would carry, so those nodes pass their reduction on as the reference: the
*forgetting* of a node is its ``distinct`` relative to a reference that only averaging lowers.
Schoenholz et al. find a network trainable up to about 6 correlation depths (forgetting e^-6);
the first weight layer whose input has forgotten more than that, with the model's output still
forgotten, is where the inputs become indistinguishable. docs/estimator.md, "Information flow".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..ir import graph as g

# Schoenholz et al. 2017: trainable while depth < ~6 correlation lengths, i.e. while the part of
# the input correlation gap that survives is above e^-6 (~1/400).
FORGETTING_LIMIT = math.exp(-6.0)

# Ops whose reduction of ``distinct`` is averaging over positions, not forgetting.
_AVERAGING_KINDS = frozenset({g.POOL, g.ATTENTION, g.MATMUL, g.SOFTMAX})


@dataclass
class Indistinct:
    """Where the inputs become indistinguishable (plain data: the report keeps it)."""

    layer: str  # the first weight layer whose input has forgotten more than the limit
    node: int
    location: Any
    cosine: float  # estimated cosine similarity of two samples' activations there
    forgetting: float  # distinct there relative to the input's (averaging excluded)
    output_forgetting: float  # the same at the model's output
    causes: dict[str, float]  # ln contributions to the forgetting up to that layer, by mechanism

    def dominant(self) -> str:
        negative = {k: v for k, v in self.causes.items() if v < 0}
        return min(negative, key=negative.get) if negative else "other"


def distinct(signal: Any) -> float | None:
    """1 - the expected cosine similarity of two samples' values: (m - c - s) / m."""
    if signal.m <= 0:
        return None
    return min(max((signal.m - signal.c - signal.s) / signal.m, 0.0), 1.0)


def cosine(signal: Any) -> float | None:
    d = distinct(signal)
    return None if d is None else 1.0 - d


def _cause(node: Any) -> str:
    if node.kind in g.WEIGHT_KINDS:
        return "biases"
    if node.kind == g.ACTIVATION:
        return f"{node.op} saturation"
    if node.kind == g.NORM:
        return "normalization"
    if node.kind == g.ADD:
        return "added constants"
    return "other"


def readout(ctx: Any, layers: list) -> Indistinct | None:
    """Fill each layer's ``cosine`` (its input's) and find where the inputs become indistinguishable."""
    graph = ctx.graph
    n = len(graph)
    dist: list[float | None] = [None] * n
    ref: list[float | None] = [None] * n  # distinct of the input, lowered only by averaging
    causes: list[dict[str, float]] = [{} for _ in range(n)]
    for node in graph:
        sig = ctx.signals[node.id]
        d = distinct(sig) if node.is_float else None
        dist[node.id] = d
        srcs = [i for i in node.inputs if graph[i].is_float and dist[i] is not None and ref[i] is not None]
        if d is None:
            continue
        if not srcs or node.kind == g.INPUT:
            ref[node.id] = d
            continue
        weights = [max(ctx.signals[i].m, 1e-300) for i in srcs]
        total = sum(weights)
        r_in = sum(w * ref[i] for w, i in zip(weights, srcs)) / total
        d_in = sum(w * dist[i] for w, i in zip(weights, srcs)) / total
        merged: dict[str, float] = {}
        for w, i in zip(weights, srcs):
            for k, v in causes[i].items():
                merged[k] = merged.get(k, 0.0) + w / total * v
        if node.kind in _AVERAGING_KINDS:
            ref[node.id] = r_in * (d / d_in) if d_in > 0 else r_in
        else:
            ref[node.id] = r_in
            if d_in > 0 and d > 0:
                step = math.log(d / d_in)
                if step < 0:
                    key = _cause(node)
                    merged[key] = merged.get(key, 0.0) + step
        causes[node.id] = merged

    def forgetting(i: int) -> float | None:
        if dist[i] is None or not ref[i]:
            return None
        return dist[i] / ref[i]

    for ly in layers:
        src = next((i for i in graph[ly.node].inputs if graph[i].is_float), None)
        ly.cosine = cosine(ctx.signals[src]) if src is not None else None

    def wide(i: int) -> bool:  # the cosine of two samples' single numbers (a regression head) says nothing
        shape = graph[i].out_shape or ()
        return math.prod(shape[1:]) > 1 if len(shape) > 1 else False

    outs = [i for o in graph.outputs for i in o.inputs
            if graph[i].is_float and forgetting(i) is not None and wide(i)]
    if not outs:
        return None
    out_f = max(forgetting(i) for i in outs)
    # what the ops after the last weight layer do (log_softmax's shift by a per-sample statistic, a
    # sigmoid output) is the loss's business, not the network's: judged at the last layer's output
    trained = [ly.node for ly in layers if not ly.is_embedding and forgetting(ly.node) is not None and wide(ly.node)]
    if trained:
        out_f = max(out_f, forgetting(max(trained)))
    if out_f >= FORGETTING_LIMIT:
        return None
    for ly in layers:
        if ly.is_embedding:
            continue
        src = next((i for i in graph[ly.node].inputs if graph[i].is_float), None)
        f = forgetting(src) if src is not None else None
        if f is not None and f < FORGETTING_LIMIT:
            return Indistinct(ly.module, ly.node, ly.location, 1.0 - dist[src], f, out_f, dict(causes[src]))
    # only the nodes after the last weight layer forget (an output activation): name the output
    worst = min(outs, key=lambda i: forgetting(i))
    node = graph[worst]
    return Indistinct(node.module or node.op or node.kind, worst, node.location, 1.0 - dist[worst], out_f, out_f,
                      dict(causes[worst]))
