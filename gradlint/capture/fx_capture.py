"""Capture with ``torch.fx.symbolic_trace`` (the first choice: no user code runs with real data).

Leaf modules are the ones ``kinds.classify_module`` knows; containers and the user's own blocks
are traced through. A small interpreter then runs the graph on meta tensors to learn shapes.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from ..ir.source import user_location
from .builder import CONST, IRBuilder, Ref, fx_nodes_in, has_tensor
from .kinds import NON_TENSOR, STOP_GRADIENT, call_name, classify_module
from .script import is_script_module, script_module_call


def _tracer_class():
    import torch.fx as fx

    class LocatingTracer(fx.Tracer):
        """Leaves = modules we classify; records the user's line of every functional call."""

        def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
            return classify_module(m) is not None or is_script_module(m)

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

        def call_module(self, target, args, kwargs):
            out = shape_only_module(self.fetch_attr(target), args, kwargs)
            return out if out is not None else super().call_module(target, args, kwargs)

        def call_function(self, target, args, kwargs):
            out = shape_only_function(target, args, kwargs)
            return out if out is not None else super().call_function(target, args, kwargs)

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
            if is_script_module(mod) and classify_module(mod) is None:
                refs[n] = script_module_call(b, n.target, mod, in_refs, [values.get(x) for x in inputs], val)
                continue
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


# -- shapes without running meta kernels --------------------------------------------------------
# On the meta device many kernels are Python decompositions (addmm -> mm + add + mul, each with
# broadcasting and dtype checks): ~1 ms per Linear, most of the capture time of a deep MLP. The
# commonest leaves have obvious output shapes; give those directly (meta inputs only, so a CPU
# capture still runs the real code).

def _same_shape_module_types() -> tuple:
    import torch.nn as nn

    return (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
            nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign,
            nn.Identity, nn.modules.dropout._DropoutNd, nn.LayerNorm, nn.GroupNorm,
            nn.modules.batchnorm._BatchNorm)


_SAME_SHAPE_FUNCTIONS = frozenset({"relu", "sigmoid", "tanh", "gelu", "silu", "mish", "elu", "selu",
                                   "leaky_relu", "hardswish", "hardsigmoid", "hardtanh", "relu6",
                                   "softplus", "softsign", "dropout"})


def _meta_tensor(x: Any) -> bool:
    import torch

    return isinstance(x, torch.Tensor) and x.device.type == "meta"


def shape_only_module(module: Any, args: tuple, kwargs: dict) -> Any:
    import torch.nn as nn

    if len(args) != 1 or kwargs or not _meta_tensor(args[0]):
        return None
    x = args[0]
    if type(module) is nn.Linear and x.dim() >= 1 and x.shape[-1] == module.in_features:
        return x.new_empty((*x.shape[:-1], module.out_features))
    if isinstance(module, _same_shape_module_types()) and type(module).forward in _PLAIN_FORWARDS():
        if not _fits(module, x):
            return None  # let the real kernel raise its own error
        return x.new_empty(x.shape)
    return None


def _fits(module: Any, x: Any) -> bool:
    import torch.nn as nn

    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return x.dim() >= 2 and x.shape[1] == module.num_features
    if isinstance(module, nn.GroupNorm):
        return x.dim() >= 2 and x.shape[1] == module.num_channels
    if isinstance(module, nn.LayerNorm):
        n = len(module.normalized_shape)
        return tuple(x.shape[-n:]) == tuple(module.normalized_shape)
    return True


def shape_only_function(target: Any, args: tuple, kwargs: dict) -> Any:
    import torch

    if not args or not _meta_tensor(args[0]) or any(isinstance(a, torch.Tensor) for a in args[1:]):
        return None
    if any(isinstance(v, torch.Tensor) for v in kwargs.values()):
        return None
    if getattr(target, "__module__", "") not in ("torch", "torch.nn.functional", "torch._C._nn", None):
        return None
    if call_name(target) in _SAME_SHAPE_FUNCTIONS:
        return args[0].new_empty(args[0].shape)
    return None


_PLAIN = None


def _PLAIN_FORWARDS() -> frozenset:
    """torch's own forward methods of those modules (a subclass overriding forward runs for real)."""
    global _PLAIN
    if _PLAIN is None:
        _PLAIN = frozenset(cls.forward for cls in _all_subclasses(_same_shape_module_types())
                           if cls.__module__.startswith("torch.nn"))
    return _PLAIN


def _all_subclasses(roots: tuple) -> list:
    out, stack = [], list(roots)
    while stack:
        c = stack.pop()
        out.append(c)
        stack += c.__subclasses__()
    return out
