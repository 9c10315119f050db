"""Zero-initialized weights that never leave zero.

A zero-initialized head or gate is a design (Fixup, SkipInit, ViT's head): its own gradient is
nonzero, so the first optimizer step moves it, and the layers behind it learn from then on. Two
zero layers in a row are a bug: each one's gradient needs the other to be nonzero first (W2's
input is W1's zero output; W1's error signal passes through W2's zero weights), so plain gradient
descent never moves either. We follow the steps: the zero weights whose predicted gradient is
nonzero move first; re-estimate as if they had; repeat until nothing moves. Whatever is still
zero then never resolves. Only the weights of weight layers are followed (a zero normalization
scale's own gradient is not predicted).
"""

from __future__ import annotations

import re
from typing import Any

from .weights import TensorStats, WeightSource, fan_in

# The weight matrices of the JSON contract's weight layers (not bias or position tables a layer
# also owns, such as TinyViT's zero-initialized attention_biases, whose gradient is not followed).
_WEIGHT_MATRIX = re.compile(r"^(weight|in_proj_weight|[qkv]_proj_weight|weight_(ih|hh)_l\d+(_reverse)?)$")


def unresolved_zero_weights(graph: Any, weights: WeightSource, batch: int, inputs: dict, est: Any) -> list[str]:
    """Names of the zero-initialized weight-layer weights that gradient descent never moves."""
    from .propagate import estimate_graph

    layer_weights: dict[str, list[str]] = {}
    for ly in est.layers:
        names = [n for n in graph[ly.node].attrs.get("weights", ())
                 if n in weights._params and _WEIGHT_MATRIX.match(n.rpartition(".")[2])]
        zero = [n for n in names if (st := weights.stats(n)) is not None and st.zero]
        if zero:
            layer_weights[ly.module] = zero
    if not layer_weights:
        return []
    stuck = dict(layer_weights)
    current = est
    while True:
        moving = [m for m in stuck if _grad_rms(current, m) > 0.0]
        if not moving:
            return sorted(n for names in stuck.values() for n in names)
        for m in moving:
            del stuck[m]
        if not stuck:
            return []
        moved = {n: _after_a_step(weights, n) for m, names in layer_weights.items() if m not in stuck for n in names}
        current = estimate_graph(graph, weights.with_overrides(moved), batch, inputs)


def _grad_rms(est: Any, module: str) -> float:
    ly = next((ly for ly in est.layers if ly.module == module), None)
    return ly.grad_rms if ly is not None and ly.grad_rms is not None else 0.0


def _after_a_step(weights: WeightSource, name: str) -> TensorStats:
    """Some nonzero statistics for a weight that has moved (only zero versus nonzero matters)."""
    shape = weights.shape(name)
    return TensorStats(shape, 1.0 / (3 * max(fan_in(shape), 1)), 0.0, False, False, "after a step")
