"""``torch.jit.script``-ed submodules, captured from their TorchScript graph.

A scripted module runs in TorchScript's interpreter: neither fx nor Python hooks see inside it
(module hooks are not even allowed on it). Its ``inlined_graph`` is a flat list of ``aten::``
ops over the module's attributes (every submodule call inlined). This module walks that graph
with the call's real (or meta) inputs: ``prim::GetAttr`` chains resolve to the module's
parameters, each ``aten::`` op runs once through ``torch.ops.aten`` for its value and becomes an
IR node through ``IRBuilder.function_call``, exactly as the same op in Python would (a linear that
reads ``fc.weight`` is that module's weight layer). ``prim::If`` takes the branch its (known)
condition picks and ``prim::Loop`` runs its trip count. Anything else raises ``ScriptUnsupported``
and the capture falls back to leaving the module opaque, with a note naming it.
"""

from __future__ import annotations

import re
from typing import Any

from ..ir.source import Location, display_path, is_library_file
from .builder import CONST, IRBuilder, Ref, display_type
from .kinds import NON_TENSOR, STOP_GRADIENT


class ScriptUnsupported(Exception):
    """A TorchScript construct this walker does not follow."""


def is_script_module(module: Any) -> bool:
    import torch

    return isinstance(module, torch.jit.ScriptModule)


_FILE_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def _location(node: Any) -> Location | None:
    """The user's line of a TorchScript node (its source range names the file)."""
    try:
        text = node.sourceRange()
    except Exception:  # noqa: BLE001 - not every node has one
        return None
    m = _FILE_LINE.search(text or "")
    if m is None or is_library_file(m.group("file")):
        return None
    return Location(display_path(m.group("file")), int(m.group("line")), 1)


class _Walker:
    def __init__(self, builder: IRBuilder, module_name: str) -> None:
        self.b = builder
        self.module_name = module_name
        self.values: dict[int, Any] = {}
        self.refs: dict[int, Any] = {}  # value id -> Ref, or a list of Refs for lists/tuples

    def set(self, v: Any, value: Any, ref: Any = CONST) -> None:
        self.values[v.unique()] = value
        self.refs[v.unique()] = ref

    def get(self, v: Any) -> tuple[Any, Any]:
        key = v.unique()
        if key not in self.values:
            raise ScriptUnsupported(f"value %{v.debugName()} used before it is defined")
        return self.values[key], self.refs.get(key, CONST)

    def run_block(self, nodes: Any) -> None:
        for node in nodes:
            self.run(node)

    def run(self, node: Any) -> None:
        import torch

        kind = node.kind()
        outs = list(node.outputs())
        ins = [self.get(v) for v in node.inputs()]
        if kind == "prim::Constant":
            self.set(outs[0], outs[0].toIValue() if outs[0].type().kind() != "NoneType" else None)
        elif kind == "prim::GetAttr":
            obj = ins[0][0]
            value = getattr(obj, node.s("name"))
            canon = self.b.param_by_id.get(id(value)) if isinstance(value, torch.Tensor) else None
            self.set(outs[0], value, Ref(param=canon) if canon else CONST)
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            seq = [v for v, _ in ins]
            self.set(outs[0], tuple(seq) if kind == "prim::TupleConstruct" else seq, [r for _, r in ins])
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            value, ref = ins[0]
            refs = ref if isinstance(ref, list) else [CONST] * len(outs)
            for o, v, r in zip(outs, value, refs):
                self.set(o, v, r)
        elif kind == "prim::TupleIndex" or kind == "aten::__getitem__":
            (seq, ref), (index, _) = ins[0], ins[1]
            self.set(outs[0], seq[index], ref[index] if isinstance(ref, list) else CONST)
        elif kind in ("prim::unchecked_cast", "aten::contiguous", "aten::detach"):
            self.set(outs[0], *ins[0]) if kind != "aten::detach" else self.set(outs[0], ins[0][0])
        elif kind in ("prim::RaiseException", "aten::warn", "prim::Uninitialized"):
            for o in outs:
                self.set(o, None)
        elif kind == "prim::If":
            self._if(node, ins, outs)
        elif kind == "prim::Loop":
            self._loop(node, ins, outs)
        elif kind.startswith("aten::") or (kind.startswith("prim::") and kind[6:] in _PRIM_VALUE_OPS):
            self._op(node, kind, ins, outs)  # other prim:: ops (PythonOp: a jit.ignore'd call) are not replayable
        else:
            raise ScriptUnsupported(f"TorchScript op {kind}")

    def _if(self, node: Any, ins: list, outs: list) -> None:
        cond = ins[0][0]
        if not isinstance(cond, bool):
            raise ScriptUnsupported("a branch on a tensor value")
        block = list(node.blocks())[0 if cond else 1]
        self.run_block(block.nodes())
        for o, r in zip(outs, block.returnNode().inputs()):
            self.set(o, *self.get(r))

    def _loop(self, node: Any, ins: list, outs: list) -> None:
        trips, cond = ins[0][0], ins[1][0]
        carried = ins[2:]
        block = list(node.blocks())[0]
        params = list(block.inputs())
        returns = list(block.returnNode().inputs())
        i = 0
        while cond and i < trips:
            self.set(params[0], i)
            for p, (v, r) in zip(params[1:], carried):
                self.set(p, v, r)
            self.run_block(block.nodes())
            cond = self.get(returns[0])[0]
            carried = [self.get(r) for r in returns[1:]]
            i += 1
            if i > 100_000:
                raise ScriptUnsupported("a loop of more than 100000 steps")
        for o, (v, r) in zip(outs, carried):
            self.set(o, v, r)

    def _op(self, node: Any, kind: str, ins: list, outs: list) -> None:
        import torch

        from .builder import has_tensor
        from .tensors import tensors_in

        ns, _, name = kind.partition("::")
        plain = [v for v, _ in ins]
        if not any(tensors_in(v, []) for v in plain) and name in _PYTHON_OPS:
            try:
                value = _PYTHON_OPS[name](*plain)
            except Exception as e:  # noqa: BLE001
                raise ScriptUnsupported(f"{kind}: {type(e).__name__}: {e}") from None
            for o in outs:
                self.set(o, value)
            return
        if ns == "prim" and name == "NumToTensor":
            import torch

            for o in outs:
                self.set(o, torch.tensor(plain[0]))
            return
        if name in ("size", "dim", "len", "Int", "Float", "Bool", "ScalarImplicit") or ns == "prim" and name in ("device", "dtype"):
            try:
                value = _TENSOR_QUERIES[name](*plain)
            except Exception as e:  # noqa: BLE001
                raise ScriptUnsupported(f"{kind}: {type(e).__name__}: {e}") from None
            for o in outs:
                self.set(o, value)
            return
        args, kwargs = _split_arguments(node, plain)
        try:
            fn = getattr(getattr(torch.ops, ns), name)
            value = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - an op this walk cannot replay
            raise ScriptUnsupported(f"{kind}: {type(e).__name__}: {e}") from None
        if len(outs) == 1:
            values = [value]
        elif isinstance(value, (tuple, list)) and len(value) == len(outs):
            values = list(value)
        else:
            values = [value] * len(outs)
        if not has_tensor(value) or name.strip("_") in NON_TENSOR or name.strip("_") in STOP_GRADIENT:
            for o, v in zip(outs, values):
                self.set(o, v)
            return
        tensors, refs = [], []
        for v, r in ins:
            found = tensors_in(v, [])
            rs = r if isinstance(r, list) else [r] * len(found)
            for t, rr in zip(found, rs):
                tensors.append(t)
                refs.append(rr if isinstance(rr, Ref) else CONST)
        if all(r.is_const for r in refs):
            for o, v in zip(outs, values):
                self.set(o, v)
            return
        first = value if isinstance(value, torch.Tensor) else next(iter(tensors_in(value, [])), None)
        ref = self.b.function_call(name, tuple(args), dict(kwargs), refs, tensors, first, _location(node),
                                   self.module_name)
        for o, v in zip(outs, values):
            self.set(o, v, ref)


# Ops on Python values (no tensor among the inputs): shapes, flags and the None checks of
# ``if bias is not None:``.
_PYTHON_OPS = {
    "__is__": lambda a, b: a is b, "__isnot__": lambda a, b: a is not b, "__not__": lambda a: not a,
    "__and__": lambda a, b: a and b, "__or__": lambda a, b: a or b,
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b, "floordiv": lambda a, b: a // b, "div": lambda a, b: a / b,
    "neg": lambda a: -a, "len": len, "Int": int, "Float": float, "Bool": bool, "min": min, "max": max,
    "format": lambda fmt, *a: str(fmt).format(*a), "list": list, "__contains__": lambda a, b: b in a,
}
_PRIM_VALUE_OPS = frozenset({"device", "dtype", "min", "max", "NumToTensor", "Int", "Float", "Bool"})
_TENSOR_QUERIES = {
    "size": lambda t, *d: (tuple(t.shape)[d[0]] if d else list(t.shape)), "dim": lambda t: t.dim(),
    "len": len, "Int": int, "Float": float, "Bool": bool, "ScalarImplicit": lambda t: t.item(),
    "device": lambda t: t.device, "dtype": lambda t: t.dtype,
}


def _split_arguments(node: Any, values: list) -> tuple[list, dict]:
    """Positional and keyword arguments as the op's schema takes them (``gelu(x, *, approximate)``)."""
    import torch

    try:
        schema = torch._C.parse_schema(node.schema())
    except Exception:  # noqa: BLE001 - no schema: all positional
        return list(values), {}
    args, kwargs = [], {}
    for arg, value in zip(schema.arguments, values):
        if arg.kwarg_only:
            kwargs[arg.name] = value
        else:
            args.append(value)
    return args, kwargs


def capture_script_call(builder: IRBuilder, module_name: str, module: Any, in_refs: list[Ref],
                        in_values: list[Any]) -> tuple[Any, list[Ref]]:
    """Walk a scripted module's graph on the call's inputs: (its output value, the Refs of the
    output's tensors, in ``tensors_in`` order). Raises ``ScriptUnsupported``."""
    from .tensors import tensors_in

    graph = module.inlined_graph
    walker = _Walker(builder, module_name)
    inputs = list(graph.inputs())
    if len(inputs) - 1 != len(in_values):
        raise ScriptUnsupported(f"the scripted forward takes {len(inputs) - 1} inputs, the call gave {len(in_values)}")
    walker.set(inputs[0], module)
    for v, value, ref in zip(inputs[1:], in_values, in_refs):
        walker.set(v, value, ref)
    walker.run_block(graph.nodes())
    returned = list(graph.return_node().inputs())
    if len(returned) != 1:
        raise ScriptUnsupported("a scripted forward with several return values")
    value, ref = walker.get(returned[0])
    found = tensors_in(value, [])
    refs = ref if isinstance(ref, list) else [ref] * len(found)
    return value, [r if isinstance(r, Ref) else CONST for r in refs]


def script_module_call(builder: IRBuilder, module_name: str, module: Any, in_refs: list[Ref], in_values: list[Any],
                       out_value: Any) -> Ref:
    """A call of a scripted module as IR: its graph's ops when the walk can follow them, else one
    opaque node (the identity to the estimator) marked ``opaque`` with the reason, which GL004
    reports by name."""
    from ..ir import graph as g
    from .kinds import Classified

    name = builder.qualname(module_name)
    mark = len(builder.graph.nodes)
    try:
        _, refs = capture_script_call(builder, name, module, in_refs, in_values)
        return refs[0] if refs else CONST
    except ScriptUnsupported as e:
        del builder.graph.nodes[mark:]  # a half-walked graph leaves no orphans behind
        reason = str(e)
    hidden = [p for p in module.parameters() if p.dim() >= 2]
    ref = builder.module_call(module_name, module, Classified(g.OTHER, "script_module"), in_refs, in_values, out_value)
    node = builder.graph[ref.node]
    node.attrs["opaque"] = f"a torch.jit.script module gradlint could not follow ({reason})"
    node.attrs["hidden_weights"] = len(hidden)
    builder.graph.notes.append(f"{name} ({display_type(module)}) is a torch.jit.script module gradlint could not "
                               f"follow ({reason}); treated as the identity, its {len(hidden)} weight tensors not analysed")
    return ref
