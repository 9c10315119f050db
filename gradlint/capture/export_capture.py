"""Capture with ``torch.export.export(strict=False)`` for code fx cannot trace symbolically.

Export runs the real forward on fake/meta tensors, so Python control flow on shapes and configs
(Hugging Face models) works. The result is aten-level; each contiguous run of aten ops inside one
call of a leaf module (by ``nn_module_stack``) becomes one IR node again.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

from ..ir.source import Location, display_path, is_library_file
from .builder import CONST, IRBuilder, Ref, fx_nodes_in, has_tensor
from .kinds import NON_TENSOR, STOP_GRADIENT, call_name, classify_module

# Single-input aten ops that return their input's values unchanged (a copy, a view, a dtype cast).
_ALIASING = frozenset({"to", "_to_copy", "to_copy", "alias", "view", "clone", "contiguous", "detach", "type_as",
                       "lift_fresh_copy", "_unsafe_view", "unsafe_view", "expand", "reshape"})

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?P<code>[^\n]*)')


def location_from_stack_trace(stack_trace: str | None, hint: str = "") -> Location | None:
    """The last frame in user code of an fx/export ``stack_trace``; the column found by name."""
    if not stack_trace:
        return None
    best = None
    for m in _FRAME.finditer(stack_trace):
        if not is_library_file(m.group("file")):
            best = m
    if best is None:
        return None
    code = best.group("code")
    col = 1
    stripped = code.lstrip()
    if hint and hint in code:
        col = code.index(hint) + 1
        # back up over ``torch.`` / ``F.`` / ``x.`` to the start of the call expression
        j = col - 2
        while j >= 0 and (code[j].isalnum() or code[j] in "._"):
            j -= 1
        col = j + 2
    elif stripped:
        col = len(code) - len(stripped) + 1
    return Location(display_path(best.group("file")), int(best.group("line")), col)


def _resolve_fqn(builder: IRBuilder, fqn: str) -> str | None:
    """nn_module_stack paths differ across torch versions: ``a.b.0``, ``L['self'].a.b[0]``."""
    candidates = [fqn]
    if fqn.startswith("L['self']"):
        s = fqn[len("L['self']"):].lstrip(".")
        candidates.append(re.sub(r"\[(\d+)\]", r".\1", s).replace("['", ".").replace("']", ""))
    for c in candidates:
        c = builder.qualname(c.strip("."))
        if c in builder.modules:
            return c
    return None


def innermost_module(builder: IRBuilder, node: Any) -> str | None:
    stack = node.meta.get("nn_module_stack") or {}
    for fqn, _type in reversed(list(stack.values())):
        name = _resolve_fqn(builder, fqn)
        if name is not None:
            return name
    return None


@contextlib.contextmanager
def _quiet_stderr():
    """torch.export prints the partial FX graph of a failed export to stderr (not through logging);
    the GL001 message says what failed. ``--debug`` keeps it."""
    from ..ir import errors

    if errors.DEBUG:
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def capture_export(model: Any, sites: Any, args: tuple, kwargs: dict, wrapper: Any = None,
                   prefix: str = "") -> Any:
    import torch

    target = wrapper if wrapper is not None else model
    with _quiet_stderr():
        ep = torch.export.export(target, tuple(args), dict(kwargs), strict=False)
    gm = ep.graph_module
    b = IRBuilder(model, sites, "export", strip_prefix=prefix)

    spec_kind = {}
    for spec in ep.graph_signature.input_specs:
        spec_kind[spec.arg.name] = (spec.kind.name, spec.target)

    nodes = list(gm.graph.nodes)
    # Which leaf-module call (if any) does each aten node belong to?
    leaf_of: dict[Any, tuple[str, str] | None] = {}
    for n in nodes:
        leaf_of[n] = None
        stack = n.meta.get("nn_module_stack") or {}
        for key, (fqn, _type) in stack.items():
            name = _resolve_fqn(b, fqn)
            if name is None or name == "":
                continue
            mod = b.modules[name]
            if classify_module(mod) is not None:
                leaf_of[n] = (key, name)
                break

    refs: dict[Any, Ref] = {}

    def resolve(x: Any) -> Ref:
        return refs.get(x, CONST)

    def fx_inputs(n: Any) -> list[Any]:
        return fx_nodes_in((n.args, n.kwargs))

    i = 0
    while i < len(nodes):
        n = nodes[i]
        if n.op == "placeholder":
            kind, tgt = spec_kind.get(n.name, ("USER_INPUT", None))
            if kind == "PARAMETER":
                canon = b.canonical_param(tgt)
                refs[n] = Ref(param=canon) if canon else CONST
            elif kind == "USER_INPUT" and hasattr(n.meta.get("val"), "shape"):
                refs[n] = Ref(node=b.add_input(n.name, n.meta.get("val")))
            else:
                refs[n] = CONST
            i += 1
            continue
        if n.op == "output":
            outs = [x for x in fx_inputs(n)]
            b.add_output([resolve(x) for x in outs])
            i += 1
            continue
        if n.op != "call_function":
            refs[n] = CONST
            i += 1
            continue
        leaf = leaf_of[n]
        if leaf is not None:
            # The whole contiguous run of this module call.
            j = i
            group = []
            while j < len(nodes) and nodes[j].op == "call_function" and leaf_of[nodes[j]] == leaf:
                group.append(nodes[j])
                j += 1
            members = set(group)
            ext_inputs: list[Any] = []
            for m in group:
                for x in fx_inputs(m):
                    if x not in members and x not in ext_inputs and resolve(x).node is not None:
                        ext_inputs.append(x)
            # Ops of the group that only move or re-type one of its inputs (HF's RMSNorm starts with
            # ``hidden_states.to(float32)``, which export may hand to the residual add outside the
            # module) are that input, not the module's output.
            aliases: dict[Any, Any] = {}
            for m in group:
                srcs = fx_inputs(m)
                if len(srcs) == 1 and call_name(m.target) in _ALIASING:
                    src = aliases.get(srcs[0], srcs[0])
                    if src not in members:
                        aliases[m] = src
            # The group's main output: the first (non-alias) member read outside the group.
            out_node = next((m for m in group if m not in aliases and any(u not in members for u in m.users)),
                            group[-1])
            mod = b.modules[leaf[1]]
            ref = b.module_call(leaf[1], mod, classify_module(mod), [resolve(x) for x in ext_inputs],
                                [x.meta.get("val") for x in ext_inputs], out_node.meta.get("val"))
            for m in group:
                refs[m] = resolve(aliases[m]) if m in aliases else ref
            i = j
            continue
        name = call_name(n.target)
        val = n.meta.get("val")
        inputs = fx_inputs(n)
        if name in NON_TENSOR or name in STOP_GRADIENT or not has_tensor(val):
            refs[n] = CONST
        else:
            loc = location_from_stack_trace(n.meta.get("stack_trace"), name)
            refs[n] = b.function_call(name, tuple(n.args), dict(n.kwargs), [resolve(x) for x in inputs],
                                      [x.meta.get("val") for x in inputs], val, loc, innermost_module(b, n))
        i += 1
    return b.finish()

