"""Structural facts about a captured graph that several rules share.

* depth: weight layers (embeddings excepted) on the longest input-to-output path;
* the shortest such path: a residual network's skip path makes it short;
* skip connections: an add/concat merging a tensor with something computed from it;
* runs: the longest stretch of nodes matching a predicate with no reset (a normalization, say)
  in between, where merges take the *easiest* input (``min``) or the *worst* one (``max``).

Pure Python on the IR; one pass each, linear in the graph size (ancestor sets are bitsets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from . import graph as g
from .graph import LayerGraph, Node


def is_depth_layer(n: Node) -> bool:
    """Weight layers that add depth: embeddings are lookups at the input, not a layer to pass."""
    return n.is_weight_layer and n.kind != g.EMBEDDING


@dataclass
class Run:
    length: int
    nodes: list[int]  # the matching nodes along the run, input side first


@dataclass
class Structure:
    graph: LayerGraph
    _cache: dict = field(default_factory=dict, repr=False)

    # -- reachability -----------------------------------------------------------------------
    @cached_property
    def ancestors(self) -> list[int]:
        anc = [0] * len(self.graph)
        for n in self.graph:
            a = 0
            for i in n.inputs:
                a |= anc[i] | (1 << i)
            anc[n.id] = a
        return anc

    @cached_property
    def skip_merges(self) -> set[int]:
        """Adds/concats where one input is computed from another: residual and dense skips."""
        anc = self.ancestors
        out = set()
        for n in self.graph:
            if n.kind not in (g.ADD, g.CONCAT):
                continue
            ins = [i for i in dict.fromkeys(n.inputs) if self.graph[i].is_float]
            if any(a != b and (anc[b] >> a) & 1 for a in ins for b in ins):
                out.add(n.id)
        return out

    @cached_property
    def linear_residual_branches(self) -> dict[int, set[int]]:
        """Skip merges ``x + W(x)`` whose branch is a single weight layer and nothing nonlinear
        (the convolutional position encodings of CoaT, DaViT, CPVT): add id -> those branch inputs.

        ``I + W`` passes the gradient with gain 1 + chi >= 1; with PyTorch's default init
        (chi = 1/3) twelve of them change its norm by 1.15^12 ~ 5. Such a branch cannot make a
        signal vanish, and it takes dozens of them to make one explode.
        """
        out: dict[int, set[int]] = {}
        for a in self.skip_merges:
            merge = self.graph[a]
            if merge.kind != g.ADD:
                continue
            ins = set(merge.inputs)
            for i in ins:
                j = i
                while _passes_scale_through(self.graph[j]):
                    j = self.graph[j].inputs[0]
                layer = self.graph[j]
                if is_depth_layer(layer) and len(layer.inputs) == 1 and layer.inputs[0] in ins - {i}:
                    out.setdefault(a, set()).add(i)
        return out

    @cached_property
    def scaled_residual_branches(self) -> dict[int, set[int]]:
        """Skip merges ``x + s * f(x)`` whose branch ends in a down-scaling: a constant |s| <= 0.5
        (EDSR's 0.1, ESRGAN's 0.2) or a learned scale (LayerScale, ReZero, SkipInit gates): add id
        -> those branch inputs. Such branches keep the residual stream's scale without
        normalization, the design of normalization-free super-resolution and deep transformers."""
        anc = self.ancestors
        out: dict[int, set[int]] = {}
        for a in self.skip_merges:
            merge = self.graph[a]
            if merge.kind != g.ADD:
                continue
            for i in set(merge.inputs):
                n = self.graph[i]
                scale = _scale(n)
                learned = n.kind == g.MUL and bool(n.params)
                if not learned and (scale is None or abs(scale) > 0.5):
                    continue
                if any(j != i and (anc[i] >> j) & 1 for j in merge.inputs):  # computed from the skip
                    out.setdefault(a, set()).add(i)
        return out

    def _cell(self, n: Node) -> str | None:
        """The recurrent module a node calls: a cell looped over time (``LSTMCell`` in a ``for``
        loop) is one layer of the architecture, however many steps the example unrolls, so
        paths count each cell once (the first call they cross)."""
        return n.module if n.kind == g.RECURRENT and n.module and is_depth_layer(n) else None

    def _step(self, n: Node, cells: frozenset[str], counts: bool) -> tuple[int, frozenset[str]]:
        """(depth added by ``n`` on a path that already crossed ``cells``, the cells after it)."""
        cell = self._cell(n)
        if cell is None:
            return (1 if counts else 0), cells
        return (1 if counts and cell not in cells else 0), cells | {cell}

    def is_depth(self, n: Node) -> bool:
        """A weight layer that adds depth (``is_depth_layer``); on a path, a looped cell counts once."""
        return is_depth_layer(n)

    # -- depth ------------------------------------------------------------------------------
    def _path_dp(self, better: Callable[[int, int], bool]) -> tuple[list[int | None], list[int | None]]:
        val: list[int | None] = [None] * len(self.graph)
        back: list[int | None] = [None] * len(self.graph)
        cells: list[frozenset[str]] = [frozenset()] * len(self.graph)
        for n in self.graph:
            if n.kind == g.INPUT:
                val[n.id] = 0
                continue
            best = None
            for i in n.inputs:
                v = val[i]
                if v is None or not self.graph[i].is_float and self.graph[i].kind != g.INPUT:
                    continue
                if best is None or better(v, val[best]):
                    best = i
            if best is None:
                continue
            back[n.id] = best
            add, cells[n.id] = self._step(n, cells[best], is_depth_layer(n))
            val[n.id] = val[best] + add
        return val, back

    @cached_property
    def _longest(self):
        return self._path_dp(lambda a, b: a > b)

    @cached_property
    def _shortest(self):
        return self._path_dp(lambda a, b: a < b)

    def _trace(self, back: list[int | None], end: int) -> list[int]:
        path = []
        cur: int | None = end
        while cur is not None:
            path.append(cur)
            cur = back[cur]
        return path[::-1]

    @cached_property
    def outputs(self) -> list[int]:
        return [n.id for n in self.graph.outputs]

    @cached_property
    def depth(self) -> int:
        """Weight layers on the longest input-to-output path."""
        vals = [self._longest[0][o] for o in self.outputs if self._longest[0][o] is not None]
        return max(vals, default=0)

    @cached_property
    def longest_path(self) -> list[int]:
        val, back = self._longest
        ends = [o for o in self.outputs if val[o] is not None]
        if not ends:
            return []
        return self._trace(back, max(ends, key=lambda o: val[o]))

    @cached_property
    def shortest_depth(self) -> int:
        """Weight layers on the shortest path to the output that needs the most (max over outputs)."""
        vals = [self._shortest[0][o] for o in self.outputs if self._shortest[0][o] is not None]
        return max(vals, default=0)

    @cached_property
    def shortest_path(self) -> list[int]:
        """The path behind ``shortest_depth``: the shortest route to the output that needs the most."""
        val, back = self._shortest
        ends = [o for o in self.outputs if val[o] is not None]
        if not ends:
            return []
        return self._trace(back, max(ends, key=lambda o: val[o]))

    def normalized_throughout(self, path: list[int]) -> bool:
        """Does a normalization separate (nearly) every two consecutive weight layers on ``path``?

        One gap in ten may lack one: mobile heads put a 1x1 conv right before the classifier
        (MobileNetV3, LCNet, HardCoReNAS) in otherwise fully normalized networks.
        """
        layers = missing = 0
        pending = False  # a weight layer seen, no normalization after it yet
        cells: frozenset[str] = frozenset()
        for i in path:
            n = self.graph[i]
            add, cells = self._step(n, cells, is_depth_layer(n))
            if add:
                layers += 1
                missing += pending
                pending = not is_norm(n)  # a weight-standardized conv normalizes itself
            elif is_norm(n):
                pending = False
        return missing <= max(layers - 1, 0) // 10

    # -- runs -------------------------------------------------------------------------------
    def run(self, counts: Callable[[Node], bool], resets: Callable[[Node], bool], merge: str = "min") -> Run:
        """The longest stretch of ``counts`` nodes with no ``resets`` node in between.

        ``merge="min"``: at a merge the run continues from the input with the shorter run (the
        gradient takes the easy way: a skip connection breaks the run). ``"max"``: from the longer.
        """
        pick = min if merge == "min" else max
        val = [0] * len(self.graph)
        back: list[int | None] = [None] * len(self.graph)
        cells: list[frozenset[str]] = [frozenset()] * len(self.graph)
        added = [False] * len(self.graph)
        for n in self.graph:
            ins = [i for i in n.inputs if self.graph[i].is_float or self.graph[i].kind == g.INPUT]
            if n.kind == g.MUL:
                # x * sigmoid(s) (squeeze-excitation, gating): the gate scales x, the run goes on through x.
                ins = [i for i in ins if not is_gate(self.graph[i])] or ins
            if merge == "max":
                side = self.linear_residual_branches.get(n.id, set()) | self.scaled_residual_branches.get(n.id, set())
                ins = [i for i in ins if i not in side] or ins
            if resets(n):
                val[n.id] = 0
                continue
            prev = pick(ins, key=lambda i: val[i]) if ins else None
            back[n.id] = prev
            add, cells[n.id] = self._step(n, cells[prev] if prev is not None else frozenset(), counts(n))
            added[n.id] = bool(add)
            val[n.id] = (val[prev] if prev is not None else 0) + add
        end = max(range(len(self.graph)), key=lambda i: val[i], default=None)
        if end is None or val[end] == 0:
            return Run(0, [])
        members = []
        cur: int | None = end
        while cur is not None and val[cur] > 0:
            if added[cur]:
                members.append(cur)
            cur = back[cur]
        return Run(val[end], members[::-1])


def _passes_scale_through(n: Node) -> bool:
    """Dropout, identity, drop-path's rescaling: one input, no weight, no nonlinearity."""
    if len(n.inputs) != 1:
        return False
    return n.kind == g.DROPOUT or (n.kind == g.ACTIVATION and n.op == "identity") or (n.kind == g.MUL and not n.params)


def is_gate(n: Node) -> bool:
    """A (0, 1) gate: what multiplies a signal in squeeze-excitation and gated units."""
    return n.kind == g.ACTIVATION and n.op in ("sigmoid", "hardsigmoid")


def is_norm(n: Node) -> bool:
    """A normalization layer, or a layer that normalizes its own weights (weight standardization,
    weight norm, spectral norm)."""
    return n.kind == g.NORM or bool(n.attrs.get("weight_standardized")) or bool(n.attrs.get("weight_normalized"))


def _scale(n: Node) -> float | None:
    """The constant factor of a one-input multiplication (``0.1 * x``), else None."""
    scalars = n.attrs.get("scalars")
    if n.kind != g.MUL or n.params or len(n.inputs) != 1 or not scalars:
        return None
    value = 1.0
    for _, v in scalars:
        if not isinstance(v, (int, float)):
            return None
        value *= float(v)
    return value

