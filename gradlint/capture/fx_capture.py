"""Capture with ``torch.fx.symbolic_trace`` (the first choice: no user code runs with real data).

Leaf modules are the ones ``kinds.classify_module`` knows; containers and the user's own blocks
are traced through. A small interpreter then runs the graph on meta tensors to learn shapes.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from ..provenance import user_location
from .builder import CONST, IRBuilder, Ref, fx_nodes_in, has_tensor
from .kinds import NON_TENSOR, STOP_GRADIENT, call_name, classify_module


def _tracer_class():
    import torch.fx as fx

    class LocatingTracer(fx.Tracer):
        """Leaves = modules we classify; records the user's line of every functional call."""

        def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
            return classify_module(m) is not None

        def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
            proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
            if kind in ("call_function", "call_method"):
                proxy.node.meta["gradlint_location"] = user_location(sys._getframe(1))
            return proxy

    return LocatingTracer


def capture_fx(model: Any, sites: Any, args: tuple, kwargs: dict) -> Any:
    import torch
    import torch.fx as fx

    # Parameters the example inputs do not give keep their defaults as constants, so that
    # ``if mask is not None:`` is traced the way the model will run.
    sig = inspect.signature(model.forward)
    names = [n for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    given = set(names[: len(args)]) | set(kwargs)
    concrete = {n: sig.parameters[n].default for n in names if n not in given and sig.parameters[n].default is not sig.parameters[n].empty}
    tracer = _tracer_class()()
    graph = tracer.trace(model, concrete_args=concrete or None)
    gm = fx.GraphModule(tracer.root, graph)

    # Shapes: interpret on meta tensors, keeping every node's value.
    values: dict[Any, Any] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n] = out
            return out

    pos = [args[i] if i < len(args) else kwargs.get(n, concrete.get(n)) for i, n in enumerate(names)]
    with torch.no_grad():
        Recorder(gm).run(*pos)

    b = IRBuilder(model, sites, "fx")
    refs: dict[Any, Ref] = {}
    # Calls that build an output container (a dataclass, ModelOutput, namedtuple): no computation;
    # what reads them (the output, ``getattr``) reads the tensors they hold.
    containers: dict[Any, Any] = {}

    def resolve(n: Any) -> Ref:
        return refs.get(n, CONST)

    def held(nodes: list) -> list:
        out = []
        for x in nodes:
            out += held(fx_nodes_in((x.args, x.kwargs))) if x in containers else [x]
        return out

    for n in gm.graph.nodes:
        val = values.get(n)
        if n.op == "placeholder":
            refs[n] = Ref(node=b.add_input(n.name, val)) if hasattr(val, "shape") else CONST
        elif n.op == "get_attr":
            canon = b.canonical_param(n.target)
            refs[n] = Ref(param=canon) if canon else CONST
        elif n.op == "call_module":
            mod = gm.get_submodule(n.target)
            inputs = fx_nodes_in((n.args, n.kwargs))
            in_refs = [resolve(x) for x in inputs]
            cls = classify_module(mod)
            refs[n] = b.module_call(n.target, mod, cls, in_refs, [values.get(x) for x in inputs], val)
        elif n.op == "call_function" and isinstance(n.target, type) and not has_tensor_type(n.target):
            containers[n] = n
        elif n.op == "call_function" and n.target is getattr and n.args[0] in containers:
            refs[n] = resolve(_field(n.args[0], n.args[1]))
        elif n.op in ("call_function", "call_method"):
            name = call_name(n.target)
            inputs = fx_nodes_in((n.args, n.kwargs))
            if name in NON_TENSOR or name in STOP_GRADIENT or not has_tensor(val):
                refs[n] = CONST
                continue
            stack = list((n.meta.get("nn_module_stack") or {}).values())
            context = stack[-1][0] if stack and isinstance(stack[-1], tuple) else None
            refs[n] = b.function_call(
                name, tuple(n.args), dict(n.kwargs), [resolve(x) for x in inputs],
                [values.get(x) for x in inputs], val, n.meta.get("gradlint_location"), context,
            )
        elif n.op == "output":
            b.add_output([resolve(x) for x in held(fx_nodes_in(n.args))])
    return b.finish()


def has_tensor_type(cls: type) -> bool:
    """Tensor subclasses and parameters are values, not containers."""
    import torch

    return issubclass(cls, torch.Tensor)


def _field(container: Any, name: str) -> Any:
    """The argument a container node was given for field ``name`` (keyword, or positional in
    dataclass/namedtuple field order)."""
    import dataclasses

    if name in container.kwargs:
        return container.kwargs[name]
    cls = container.target
    order = ([f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls)
             else list(getattr(cls, "_fields", ())))
    if name in order and order.index(name) < len(container.args):
        return container.args[order.index(name)]
    return None

