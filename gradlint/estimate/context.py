"""What a handler may ask while the estimate runs: the batch, weight statistics, shapes, and a
place to record the assumptions the user should know about."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .signals import UNIT, Signal
from .weights import TensorStats, WeightSource


class Unsupported(Exception):
    """A handler met a case it does not model (the node is then reported as unhandled)."""


@dataclass
class Context:
    graph: Any  # LayerGraph
    weights: WeightSource
    batch: int
    input_signals: dict[int, Signal] = field(default_factory=dict)
    assumptions: list[tuple[int, str]] = field(default_factory=list)  # (node id, text)
    signals: list[Signal] = field(default_factory=list)  # forward statistics, filled in graph order
    # add node -> (index of its skip input, factor): set by the activation after a residual add
    # (handlers/activation.py), read by the add's backward
    skip_boost: dict[int, tuple[int, float]] = field(default_factory=dict)
    # node -> (why its output is exactly zero, the node that makes it zero): a zero-initialized
    # normalization scale or weight whose output is 0, and what passes that 0 on; filled by forward
    forward_zero: dict[int, tuple[str, int]] = field(default_factory=dict)
    # node -> the prefix tokens' part of its output (class/register tokens, prefix.py)
    prefix: dict[int, Any] = field(default_factory=dict)
    # node -> indices of its inputs that read only the prefix tokens (``x[:, 0]``)
    prefix_reads: dict[int, list[int]] = field(default_factory=dict)
    _spectral: dict[str, float] = field(default_factory=dict)
    _readers: list[list[tuple[int, Any]]] | None = None

    # -- parameters ------------------------------------------------------------------------
    def param(self, node: Any, local: str, block: int = 0, blocks: int = 1) -> TensorStats | None:
        """Stats of the parameter ``node`` reads under ``local`` (``weight``, ``bias``, ...)."""
        name = node.params.get(local)
        return self.weights.stats(name, block, blocks) if name else None

    def param_name(self, node: Any, local: str) -> str | None:
        return node.params.get(local)

    def spectral(self, node: Any, local: str, shape: tuple[int, int], taps: int = 1):
        """A lazy ||W||_2 for the bound (power iteration is only paid when the bound is asked)."""
        name = node.params.get(local)

        def value() -> float:
            from .bound import expected_spectral_norm, spectral_norm

            if not name:
                return math.inf
            if name not in self._spectral:
                t = self.weights.tensor(name)
                if t is not None:
                    self._spectral[name] = spectral_norm(t, shape[0], taps)
                else:
                    st = self.weights.stats(name)
                    cols = max(1, shape[1] // max(taps, 1))
                    self._spectral[name] = expected_spectral_norm(st.second, shape[0], cols, taps,
                                                                  st.mean) if st else math.inf
            return self._spectral[name]

        return value

    def assume(self, node: Any, text: str, once: bool = False) -> None:
        """Record an approximation the user should know about (``once``: one note per model)."""
        if once and any(t == text for _, t in self.assumptions):
            return
        self.assumptions.append((node.id, text))

    # -- shapes ----------------------------------------------------------------------------
    def in_shape(self, node: Any, i: int = 0) -> tuple[int, ...] | None:
        if i < len(node.in_shapes) and node.in_shapes[i] is not None:
            return tuple(node.in_shapes[i])
        if i < len(node.inputs):
            s = self.graph[node.inputs[i]].out_shape
            return tuple(s) if s is not None else None
        return None

    def positions(self, shape: tuple[int, ...] | None, channels: int) -> int:
        """Rows sharing one weight per sample: tokens x pixels (numel / (batch * channels))."""
        if not shape or channels <= 0:
            return 1
        return max(1, numel(shape) // max(1, self.batch * channels))

    def readers(self, node_id: int) -> list[tuple[int, Any]]:
        """(consumer id, the shape it reads) for each consumer of a node's output."""
        if self._readers is None:
            self._readers = [[] for _ in self.graph.nodes]
            for n in self.graph:
                for j, i in enumerate(n.inputs):
                    shape = n.in_shapes[j] if j < len(n.in_shapes) else None
                    self._readers[i].append((n.id, shape))
        return self._readers[node_id]

    def producer(self, node: Any, i: int) -> Any:
        return self.graph[node.inputs[i]]

    def input_signal(self, node: Any) -> Signal:
        return self.input_signals.get(node.id, UNIT)


def numel(shape: tuple[int, ...] | None) -> int:
    return math.prod(shape) if shape else 1

