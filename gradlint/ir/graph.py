"""The one intermediate representation every capture method produces.

A ``LayerGraph`` is a DAG of ``Node``s in topological (forward execution) order. Rules and the
estimator only ever see this IR, never an fx graph or an exported program, so adding a capture
method never touches a rule.

This module must not import torch: rules and the CLI read graphs without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .source import Location

# Node kinds (the design card's list). ``op`` refines the kind: the activation's name, the norm's
# flavour, the pooling type, ...
INPUT = "input"
OUTPUT = "output"
LINEAR = "linear"
CONV = "conv"
CONV_TRANSPOSE = "conv_transpose"
RECURRENT = "recurrent"
EMBEDDING = "embedding"
ACTIVATION = "activation"
NORM = "norm"
ADD = "add"
MUL = "mul"
CONCAT = "concat"
POOL = "pool"
ATTENTION = "attention"
DROPOUT = "dropout"
RESHAPE = "reshape"
SOFTMAX = "softmax"
MATMUL = "matmul"
OTHER = "other"

# Kinds that carry trainable weight matrices: the "weight layers" of the JSON contract.
WEIGHT_KINDS = frozenset({LINEAR, CONV, CONV_TRANSPOSE, RECURRENT, EMBEDDING, ATTENTION})


@dataclass
class Node:
    id: int
    kind: str
    op: str = ""
    inputs: list[int] = field(default_factory=list)
    module: str | None = None  # qualified name from named_modules(); None for functional ops
    module_type: str | None = None  # class name of the owning module
    location: Location | None = None
    out_shape: tuple[int, ...] | None = None
    in_shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    # Qualified names of the parameters this node reads (weights of a functional F.linear, say).
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_float(self) -> bool:
        """Carries differentiable (floating-point) values: integer ids and masks carry no gradient."""
        return bool(self.attrs.get("float", True)) and self.kind != OUTPUT

    @property
    def is_weight_layer(self) -> bool:
        return self.kind in WEIGHT_KINDS and bool(self.attrs.get("has_weight", True))

    def describe(self) -> str:
        name = self.module or self.op or self.kind
        return f"{name} ({self.module_type or self.kind})"


@dataclass
class LayerGraph:
    nodes: list[Node] = field(default_factory=list)
    capture: str = "fx"  # fx | export | hooks
    notes: list[str] = field(default_factory=list)  # capture warnings worth showing the user
    input_source: str = ""  # where the example inputs came from

    # -- construction -------------------------------------------------------------------
    def add(self, kind: str, op: str = "", inputs: Iterable[int] = (), **fields: Any) -> Node:
        node = Node(id=len(self.nodes), kind=kind, op=op, inputs=list(inputs), **fields)
        self.nodes.append(node)
        return node

    # -- queries --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    @property
    def inputs(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == INPUT]

    @property
    def outputs(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == OUTPUT]

    def users(self) -> list[list[int]]:
        """users()[i] = ids of the nodes that read node i (the backward edges)."""
        out: list[list[int]] = [[] for _ in self.nodes]
        for n in self.nodes:
            for i in n.inputs:
                out[i].append(n.id)
        return out

    def frozen_layers(self) -> list[Node]:
        """Layers whose weights are all frozen (``requires_grad=False``): not weight layers (training
        never computes their gradient), listed once each, at their first call."""
        seen: set[str] = set()
        out = []
        for n in self.nodes:
            key = n.module or f"#{n.id}"
            if n.kind in WEIGHT_KINDS and n.attrs.get("frozen") and key not in seen:
                seen.add(key)
                out.append(n)
        return out

    def weight_layers(self) -> list[Node]:
        """The first call of each weight-owning module, in forward execution order.

        A module called several times (a loop over one block) is listed once, at its first call,
        and a weight shared by several modules (tied embeddings) counts once, at its first use, as
        the JSON contract asks.
        """
        seen_modules: set[str] = set()
        seen_weights: set[str] = set()
        layers = []
        for n in self.nodes:
            if not n.is_weight_layer:
                continue
            key = n.module or f"#{n.id}"
            weights = set(n.attrs.get("weights", ()))
            if key in seen_modules or (weights and weights <= seen_weights):
                continue
            seen_modules.add(key)
            seen_weights |= weights
            layers.append(n)
        return layers
