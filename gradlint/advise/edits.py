"""Edits of a captured graph: the architecture a fix would build, without touching the source.

A ``LayerGraph`` keeps its nodes in forward order with ids equal to positions, so every edit
rebuilds the node list: nodes are copied (never shared with the original graph), inserted nodes
take their place right after the node they follow, and every consumer is re-pointed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..ir import graph as g
from ..ir.graph import LayerGraph, Node


@dataclass
class GraphEdit:
    """What to change: activation ops, nodes inserted after a node, residual adds, branch scales."""

    ops: dict[int, tuple[str, str, dict[str, Any]]] = field(default_factory=dict)  # node -> (kind, op, attrs)
    norms_after: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # node -> (norm op, attrs)
    residuals: list[tuple[int, int]] = field(default_factory=list)  # (block input, block output)
    scales: dict[int, float] = field(default_factory=dict)  # node -> constant its output is multiplied by

    def __bool__(self) -> bool:
        return bool(self.ops or self.norms_after or self.residuals or self.scales)


def apply_edit(graph: LayerGraph, edit: GraphEdit) -> LayerGraph:
    """A new graph with ``edit`` applied; ``graph`` is left as it was."""
    if not edit:
        return graph
    out = LayerGraph(capture=graph.capture, notes=list(graph.notes), input_source=graph.input_source)
    alias: dict[int, int] = {}  # old id -> id of the new node that now carries its value
    closes: dict[int, list[int]] = {}  # block output (old id) -> block inputs (old ids) of residuals
    for src, dst in edit.residuals:
        closes.setdefault(dst, []).append(src)
    entry: dict[int, int] = {}  # block input (old id) -> the new id the block read it from

    for node in graph.nodes:
        kind, op, attrs = edit.ops.get(node.id, (node.kind, node.op, None))
        new_attrs = dict(node.attrs) if attrs is None else {**node.attrs, **attrs}
        # a swapped norm does not read the old one's parameters (a fresh module: scale 1, shift 0)
        params = {} if new_attrs.pop("drop_params", False) else dict(node.params)
        copy = dataclasses.replace(node, id=len(out.nodes), kind=kind, op=op, attrs=new_attrs,
                                   inputs=[alias.get(i, i) for i in node.inputs], in_shapes=list(node.in_shapes),
                                   params=params)
        out.nodes.append(copy)
        alias[node.id] = copy.id
        if node.id in closes:
            for src in closes[node.id]:
                entry.setdefault(src, alias[src])
        if node.id in edit.norms_after:
            norm_op, norm_attrs = edit.norms_after[node.id]
            alias[node.id] = _append(out, g.NORM, norm_op, [alias[node.id]], node, dict(norm_attrs))
        if node.id in edit.scales:
            alias[node.id] = _append(out, g.MUL, "mul", [alias[node.id]], node,
                                     {"scalars": [(1, float(edit.scales[node.id]))]})
        for src in closes.get(node.id, ()):
            # the block's input as the block read it (before any later edit re-pointed ``src``)
            alias[node.id] = _append(out, g.ADD, "add", [entry[src], alias[node.id]], node, {"alpha": 1})
    return out


def _append(out: LayerGraph, kind: str, op: str, inputs: list[int], like: Node, attrs: dict[str, Any]) -> int:
    shape = like.out_shape
    node = Node(id=len(out.nodes), kind=kind, op=op, inputs=inputs, module=None, module_type=None,
                location=like.location, out_shape=shape, in_shapes=[shape] * len(inputs),
                attrs={"float": True, "inserted": True, **attrs})
    out.nodes.append(node)
    return node.id
