"""What the advisor needs to know about a model's graph to propose changes: the units a weight
layer starts (layer -> norm -> activation), which activations are gates, where things were
constructed in the source, and which user-defined blocks keep their input's shape.

Pure reads of the IR, plus (for blocks) the model's module tree and the source span of a class.
"""

from __future__ import annotations

import inspect
import os
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..ir import graph as g
from ..ir.graph import LayerGraph, Node
from ..ir.source import Location, display_path, is_library_file
from ..ir.structure import is_gate

# Elementwise nodes that belong to the unit of the weight layer before them.
UNIT_KINDS = (g.NORM, g.ACTIVATION, g.DROPOUT)
LAYER_KINDS = (g.LINEAR, g.CONV, g.CONV_TRANSPOSE)


def site_key(loc: Location | None) -> tuple[str, int, int] | None:
    return (loc.path, loc.line, loc.column) if loc is not None else None


def site_json(loc: Location) -> dict[str, Any]:
    """A source site for a codemod plan: an absolute path (the plan may be applied from another
    working directory: the language server's), 1-based line, 1-based UTF-8 byte column."""
    return {"path": os.path.abspath(loc.path), "line": loc.line, "column": loc.column}


@dataclass
class Unit:
    """A weight layer and the elementwise nodes right after it (its norm, activation, dropout)."""

    layer: int
    nodes: list[int]  # the layer first, then the elementwise nodes in order

    @property
    def end(self) -> int:
        return self.nodes[-1]


class Anatomy:
    def __init__(self, graph: LayerGraph) -> None:
        self.graph = graph
        self.users = graph.users()

    # -- units -------------------------------------------------------------------------------
    @cached_property
    def units(self) -> list[Unit]:
        """One per call of a Linear/Conv layer (every call: a layer used in a loop is several units)."""
        out = []
        for n in self.graph:
            if n.kind in LAYER_KINDS and n.is_weight_layer:
                nodes = [n.id]
                cur = n.id
                while True:
                    users = self.users[cur]
                    if len(users) != 1:
                        break
                    nxt = self.graph[users[0]]
                    if nxt.kind not in UNIT_KINDS or len([i for i in nxt.inputs if self.graph[i].is_float]) != 1:
                        break
                    nodes.append(nxt.id)
                    cur = nxt.id
                out.append(Unit(n.id, nodes))
        return out

    def activation_of(self, unit: Unit) -> Node | None:
        return next((self.graph[i] for i in unit.nodes if self.graph[i].kind == g.ACTIVATION), None)

    def has_norm(self, unit: Unit) -> bool:
        return any(self.graph[i].kind == g.NORM for i in unit.nodes)

    def feeds_output(self, node_id: int) -> bool:
        """The node's value reaches a model output through elementwise nodes only (a head)."""
        todo, seen = [node_id], set()
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            for u in self.users[i]:
                n = self.graph[u]
                if n.kind == g.OUTPUT:
                    return True
                if n.kind in UNIT_KINDS or n.kind in (g.RESHAPE, g.POOL):
                    todo.append(u)
        return False

    @cached_property
    def hidden_units(self) -> list[Unit]:
        """Units that are not a head (whose output goes straight to a model output)."""
        return [u for u in self.units if not self.feeds_output(u.end)]

    def dominant_activation(self) -> str | None:
        """The activation most hidden layers are followed by (None: mostly linear)."""
        ops = Counter(a.op for u in self.hidden_units if (a := self.activation_of(u)) is not None)
        return ops.most_common(1)[0][0] if ops else None

    # -- gates and sites ---------------------------------------------------------------------------
    def is_gate(self, node: Node) -> bool:
        """A (0, 1)-valued activation whose output multiplies something (x * sigmoid(g)): a gate,
        part of the design, not a layer's nonlinearity (``ir.structure.is_gate``'s activations)."""
        return is_gate(node) and any(self.graph[u].kind in (g.MUL, g.ATTENTION, g.MATMUL) for u in self.users[node.id])

    def sites(self, nodes: list[Node]) -> dict[tuple, list[Node]]:
        """Nodes grouped by the source site that made them (construction line or functional call)."""
        out: dict[tuple, list[Node]] = {}
        for n in nodes:
            key = site_key(n.location)
            if key is not None:
                out.setdefault(key, []).append(n)
        return out

    def nodes_at(self, keys: set[tuple], kinds: tuple[str, ...]) -> list[Node]:
        return [n for n in self.graph if n.kind in kinds and site_key(n.location) in keys]

    def same_shape(self, a: int, b: int) -> bool:
        sa, sb = self.graph[a].out_shape, self.graph[b].out_shape
        return sa is not None and sb is not None and tuple(sa) == tuple(sb)


# -- user-defined blocks ---------------------------------------------------------------------------

@dataclass
class Block:
    """One call of a user-defined module whose output has its input's shape."""

    module: str  # qualified name
    cls: type
    entry: int  # the node the block reads
    exit: int  # the node the block returns


def user_class_source(cls: type) -> tuple[str, int, int] | None:
    """(display path, first line, last line) of a class defined in the user's project."""
    try:
        file = inspect.getsourcefile(cls)
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None
    if not file or is_library_file(file):
        return None
    return display_path(file), start, start + len(lines) - 1


def blocks(graph: LayerGraph, model: Any) -> list[Block]:
    """Calls of the user's own module classes (not the root) that read one tensor and return one
    of the same shape: the places a residual ``x + block(x)`` fits without a projection.

    A block's nodes are those of its submodules plus the functional calls written in its class;
    they must be contiguous in forward order, the block called once per instance.
    """
    import torch.nn as nn

    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    out: list[Block] = []
    spans: dict[type, tuple[str, int, int] | None] = {}
    users = graph.users()
    extent: dict[str, list[int]] = {}  # module prefix -> [first node, last node] of its submodules
    for n in graph:
        if n.module:
            parts = n.module.split(".")
            for k in range(1, len(parts)):
                e = extent.setdefault(".".join(parts[:k]), [n.id, n.id])
                e[1] = n.id
    for name, mod in model.named_modules():
        cls = type(mod)
        if not name or isinstance(mod, containers) or cls.__module__.startswith("torch."):
            continue
        if cls not in spans:
            spans[cls] = user_class_source(cls)
        span = spans[cls]
        if span is None:
            continue
        prefix = name + "."
        if name not in extent:
            continue
        lo, hi = extent[name]
        # functional calls written in the class's forward, right after its last submodule call
        while hi + 1 < len(graph) and graph[hi + 1].module is None and _in_span(graph[hi + 1], span) \
                and graph[hi + 1].kind != g.OUTPUT:
            hi += 1
        region = set(range(lo, hi + 1))
        if any(graph[i].module and not graph[i].module.startswith(prefix) for i in region):
            continue  # interleaved with other modules: not one contiguous call
        if any(graph[i].module is None and not _in_span(graph[i], span) for i in region):
            continue
        entries = {i for r in region for i in graph[r].inputs if i not in region and graph[i].is_float}
        exits = [r for r in region if any(u not in region for u in users[r])]
        if len(entries) != 1 or exits != [hi]:
            continue
        entry = next(iter(entries))
        a, b = graph[entry].out_shape, graph[hi].out_shape
        if a is None or b is None or tuple(a) != tuple(b):
            continue
        out.append(Block(name, cls, entry, hi))
    # keep the innermost blocks: a block inside another block is the finer change
    names = [b.module for b in out]
    return [b for b in out if not any(o != b.module and o.startswith(b.module + ".") for o in names)]


def _in_span(node: Node, span: tuple[str, int, int]) -> bool:
    loc = node.location
    return loc is not None and loc.path == span[0] and span[1] <= loc.line <= span[2]
