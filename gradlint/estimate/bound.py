"""The worst-case bound and the textbook baseline.

``bound`` of a layer: an upper bound on ||dL/dy_l|| / ||dL/dy_L|| (the error signal at the
layer's output relative to the last weight layer's), the sum over paths of the product of each
node's worst-case factor: sup|phi'| for activations, ||W||_2 for weight layers (power iteration
on the real weights when materialized, which converges from below, or the expected norm of a
random matrix of the init's scale on the meta device), 1 for additions. Normalization, attention
and gates have no fixed Lipschitz constant: their expected gain stands in, and the estimate says
so. A bound can prove vanishing (product < 1), never explosion (docs/estimator.md, "Worst-case bounds").

``naive``: the product of activation-derivative maxima alone along the most favourable path
(0.25^L for sigmoid): the estimate the accuracy benchmark compares against.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..ir import graph as g


def spectral_norm(tensor: Any, rows: int, taps: int = 1, iterations: int = 12) -> float:
    """Sum over kernel taps of ||W_tap||_2 by power iteration (a bound on a conv's operator norm)."""
    import torch

    with torch.no_grad():
        w = tensor.detach().float()
        if w.dim() < 2 or (not (taps > 1 and w.dim() > 2) and w.numel() % max(rows, 1)):
            # a vector broadcast over positions (CaiT's LayerScale, a per-channel gain) scales each
            # entry: the operator norm of a diagonal is its largest entry
            return float(w.abs().max()) if w.numel() else 0.0
        if taps > 1 and w.dim() > 2:
            w = w.reshape(w.shape[0], w.shape[1], -1).permute(2, 0, 1)  # (taps, out, in)
        else:
            w = w.reshape(1, rows, -1)
        gen = torch.Generator().manual_seed(0)
        v = torch.randn(w.shape[0], w.shape[2], 1, generator=gen)
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)
        sigma = torch.zeros(w.shape[0])
        for _ in range(iterations):
            u = w @ v
            sigma = u.norm(dim=1).squeeze(-1)
            u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-30)
            v = w.transpose(1, 2) @ u
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)
        return float(sigma.sum())


def expected_spectral_norm(second: float, rows: int, cols: int, taps: int = 1, mean: float = 0.0) -> float:
    """||W||_2 of a rows x cols random matrix with entries of second moment ``second``, per tap: the
    random part's sqrt(var) (sqrt(rows) + sqrt(cols)) plus the constant part's |mean| sqrt(rows cols)
    (a recorded init such as ``fill_(0.1)`` or ``uniform_(0, 1)`` has one)."""
    var = max(second - mean * mean, 0.0)
    return taps * (math.sqrt(var) * (math.sqrt(rows) + math.sqrt(cols)) + abs(mean) * math.sqrt(rows * cols))


def _resolve(lip: list[float] | Callable[[], list[float]] | None, n: int) -> list[float]:
    if callable(lip):
        lip = lip()
    if not lip:
        return [1.0] * n
    values = [float(x()) if callable(x) else float(x) for x in lip]  # lazy ||W||_2 of weight layers
    return values + [1.0] * (n - len(values))


def bounds_and_baseline(ctx: Any, steps: list, layer_nodes: list[int]) -> tuple[list[float | None], list[float | None], bool]:
    graph = ctx.graph
    if not layer_nodes:
        return [], [], False
    last = layer_nodes[-1]
    n = len(graph)
    bound: list[float | None] = [None] * n
    naive: list[float | None] = [None] * n
    bound[last], naive[last] = 1.0, 1.0
    estimated = False
    for node in reversed(graph.nodes[: last + 1]):
        b, nv = bound[node.id], naive[node.id]
        if b is None:
            continue
        step = steps[node.id]
        lips = _resolve(step.lipschitz, len(node.inputs))
        if step.bound_is_estimate and any(lips):
            estimated = True
        factor = 1.0
        if node.kind == g.ACTIVATION:
            factor = lips[0] if lips else 1.0
        for j, src in enumerate(node.inputs):
            if not graph[src].is_float:
                continue
            bound[src] = (bound[src] or 0.0) + lips[j] * b
            naive[src] = max(naive[src] or 0.0, factor * nv)
    return [_finite(bound[i]) for i in layer_nodes], [_finite(naive[i]) for i in layer_nodes], estimated


def _finite(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None if x is None else 1e300
    return x
