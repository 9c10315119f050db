"""The source edits that carry out a fix (libcst: formatting and comments are kept).

Each codemod takes a module's source and one change of a fix's plan (``Fix.edit["changes"]``,
written by ``gradlint/advise/candidates.py``) and returns the new source, or raises
``CannotRewrite`` with what the user should do by hand. A codemod never guesses: a site it does
not recognise (an activation from a lookup table, a layer built from a config in a loop, a call
through a variable) is a ``CannotRewrite``, never a half-done edit. Applying a change twice
changes nothing the second time.

    init             an init method called at the end of the model's __init__ (or a wrapper around
                     the factory's return value): the weights only ("safe")
    swap_activation  nn.Sigmoid() -> nn.ReLU(), torch.sigmoid(x) -> torch.relu(x), x.tanh() -> x.relu()
    insert_norm      nn.Linear(a, b) -> nn.Sequential(nn.Linear(a, b), nn.LayerNorm(b))
    swap_norm        nn.LayerNorm(c) -> nn.BatchNorm1d(c), nn.BatchNorm2d(c) -> nn.GroupNorm(1, c), ...
    residual         return f(x) -> return x + f(x) in a block's forward; x = f(x) -> x = x + f(x) in
                     the loop of a forward over a ModuleList
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

INIT_METHOD = "_gradlint_init"


def _find_all(node: cst.CSTNode, kind: type) -> list[Any]:
    """Every node of type ``kind`` in ``node``'s tree, itself included, in source order (what
    ``libcst.matchers.findall`` gives for a bare type, without importing matchers: 0.15 s)."""
    found, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, kind):
            found.append(n)
        stack.extend(reversed(n.children))
    return found


def note_for(title: str, attenuation: float | None, verdict: str | None) -> str:
    """The comment an init fix leaves in the code: what it is and what it was predicted to do
    (the same from --fix and from the editor's quick fix)."""
    att = f"{attenuation:.1e}" if isinstance(attenuation, (int, float)) else "-"
    return f"gradlint --fix: {title}; predicted attenuation {att} ({verdict})"


class CannotRewrite(Exception):
    """The source does not have a shape this codemod can change safely; the message says what to do."""


# -- helpers --------------------------------------------------------------------------------------

def _dotted(expr: cst.BaseExpression) -> str | None:
    """'nn.Linear' for Attribute(Name(nn), Linear); None for anything but names and attributes."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = _dotted(expr.value)
        return f"{base}.{expr.attr.value}" if base else None
    return None


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _char_column(source_lines: Sequence[str], line: int, byte_column: int) -> int:
    """0-based code-point column (libcst's) of a 1-based UTF-8 byte column (Python's co_positions)."""
    text = source_lines[line - 1] if 0 < line <= len(source_lines) else ""
    prefix = text.encode("utf-8")[: max(byte_column - 1, 0)]
    return len(prefix.decode("utf-8", errors="ignore"))


def calls_at(module: cst.Module, sites: Sequence[tuple[int, int]]) -> tuple[MetadataWrapper, dict[tuple[int, int], cst.Call]]:
    """The Call node starting at each (line, byte column) site; a site with no call is absent."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    lines = module.code.splitlines()
    wanted = {(line, _char_column(lines, line, col)): (line, col) for line, col in sites}
    found: dict[tuple[int, int], cst.Call] = {}
    ends: dict[tuple[int, int], tuple[int, int]] = {}
    # the outermost call starting there is the one Python reports: ``f(x).sigmoid()`` and
    # ``getattr(nn, name)()`` start where their inner calls do
    for node, pos in positions.items():
        if isinstance(node, cst.Call):
            key = (pos.start.line, pos.start.column)
            if key in wanted:
                site = wanted[key]
                end = (pos.end.line, pos.end.column)
                if site not in found or end > ends[site]:
                    found[site], ends[site] = node, end
    return wrapper, found


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: dict[cst.CSTNode, cst.CSTNode]) -> None:
        self.replacements = replacements

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):  # type: ignore[override]
        return self.replacements.get(original, updated)


def _replace(module: cst.Module, replacements: dict[cst.CSTNode, cst.CSTNode]) -> cst.Module:
    return module.visit(_Replace(replacements)) if replacements else module


def _parse(source: str, path: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as e:
        raise CannotRewrite(f"{path} does not parse ({e.message}); fix the syntax first") from None


def _generated(source: str) -> bool:
    head = "\n".join(source.splitlines()[:5]).lower()
    return "@generated" in head or "do not edit" in head or "auto-generated" in head or "autogenerated" in head


def nn_prefix(module: cst.Module) -> str | None:
    """How the file spells torch.nn: 'nn' (import torch.nn as nn / from torch import nn),
    'torch.nn' (import torch), or None."""
    has_torch = False
    for stmt in module.body:
        for small in getattr(stmt, "body", ()) if isinstance(stmt, cst.SimpleStatementLine) else ():
            if isinstance(small, cst.Import):
                for alias in small.names:
                    name = _dotted(alias.name)
                    asname = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
                    if name == "torch.nn" and asname:
                        return asname
                    if name in ("torch", "torch.nn") and not asname:
                        has_torch = True
            elif isinstance(small, cst.ImportFrom) and _dotted(small.module) == "torch" \
                    and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == "nn":
                        return alias.asname.name.value if alias.asname else "nn"  # type: ignore[union-attr]
    return "torch.nn" if has_torch else None


# -- swap_activation --------------------------------------------------------------------------------

MODULE_ACTIVATIONS = {"Sigmoid", "Tanh", "Hardsigmoid", "Hardtanh", "Softsign", "LogSigmoid"}
FUNCTIONAL_ACTIVATIONS = {"sigmoid", "tanh", "hardsigmoid", "hardtanh", "softsign", "logsigmoid"}
TARGETS = {"relu": ("ReLU", "relu")}  # swap target -> (module class, function)


def swap_activation(source: str, change: dict[str, Any], path: str) -> str:
    module = _parse(source, path)
    to_class, to_func = TARGETS[change["to"]]
    sites = [(s["line"], s["column"]) for s in change["sites"] if _same_file(s["path"], path)]
    _, found = calls_at(module, sites)
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    for site in sites:
        call = found.get(site)
        if call is None:
            raise CannotRewrite(f"{path}:{site[0]}: no activation call found at this line (was the file edited since "
                                "the analysis?); run gradlint again")
        name = _dotted(call.func)
        last = call.func.attr.value if isinstance(call.func, cst.Attribute) else name
        if last in (to_class, to_func):
            continue  # already swapped
        if name is not None and name.split(".")[-1] in MODULE_ACTIVATIONS and "." in name:
            func = call.func.with_changes(attr=cst.Name(to_class))  # type: ignore[union-attr]
            replacements[call] = call.with_changes(func=func, args=[])
        elif name is not None and "." in name and name.split(".")[-1] in FUNCTIONAL_ACTIVATIONS \
                and name.rsplit(".", 1)[0] in ("torch", "F", "nn.functional", "torch.nn.functional") and call.args:
            func = call.func.with_changes(attr=cst.Name(to_func))  # type: ignore[union-attr]
            replacements[call] = call.with_changes(func=func, args=[call.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)])
        elif isinstance(call.func, cst.Attribute) and call.func.attr.value in FUNCTIONAL_ACTIVATIONS and not call.args \
                and _dotted(call.func.value) not in ("torch", "F"):
            replacements[call] = call.with_changes(func=call.func.with_changes(attr=cst.Name(to_func)))  # x.sigmoid()
        else:
            raise CannotRewrite(_manual_activation(path, site[0], call, to_class, to_func))
    return _replace(module, replacements).code


def _manual_activation(path: str, line: int, call: cst.Call, to_class: str, to_func: str) -> str:
    what = _code(call)
    if isinstance(call.func, cst.Subscript):
        why = "the activation comes from a lookup table"
    elif isinstance(call.func, cst.Call):
        why = "the activation class is computed (getattr or a factory)"
    elif isinstance(call.func, cst.Name):
        why = "the activation is called through a name gradlint cannot follow (a parameter or an import alias)"
    else:
        why = "gradlint does not recognise this call"
    return (f"{path}:{line}: {why} (`{what}`): make it build nn.{to_class}() (or call torch.{to_func}) "
            "for the hidden layers, keeping sigmoid/tanh for outputs and gates")


# -- normalization -----------------------------------------------------------------------------------

_OUT_ARG = {"Linear": (1, "out_features"), "Conv1d": (1, "out_channels"), "Conv2d": (1, "out_channels"),
            "Conv3d": (1, "out_channels"), "ConvTranspose1d": (1, "out_channels"),
            "ConvTranspose2d": (1, "out_channels"), "ConvTranspose3d": (1, "out_channels")}
_FEATURE_ARG = {"LayerNorm": (0, "normalized_shape"), "RMSNorm": (0, "normalized_shape"),
                "BatchNorm1d": (0, "num_features"), "BatchNorm2d": (0, "num_features"),
                "BatchNorm3d": (0, "num_features"), "GroupNorm": (1, "num_channels")}
_LAYER_ATTRS = ("weight", "bias", "in_features", "out_features", "in_channels", "out_channels", "kernel_size",
                "stride", "padding")


def _arg(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == keyword:
            return a.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[position].value if position < len(positional) else None


def _pure(expr: cst.BaseExpression) -> bool:
    """Safe to write twice: names, attributes, numbers and arithmetic of them."""
    if isinstance(expr, (cst.Name, cst.Integer)):
        return True
    if isinstance(expr, cst.Attribute):
        return _pure(expr.value)
    if isinstance(expr, cst.BinaryOperation):
        return _pure(expr.left) and _pure(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _pure(expr.expression)
    return False


def _assigned_attr(module: cst.Module, call: cst.Call) -> str | None:
    """'fc' for ``self.fc = <call>``: the attribute a constructed layer is stored under."""
    finder = _AssignTarget(call)
    module.visit(finder)
    return finder.attr


class _AssignTarget(cst.CSTVisitor):
    def __init__(self, call: cst.Call) -> None:
        self.call = call
        self.attr: str | None = None

    def visit_Assign(self, node: cst.Assign) -> None:
        if node.value is self.call and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Attribute):
            self.attr = node.targets[0].target.attr.value


class _AttrUse(cst.CSTVisitor):
    """Does the file read ``<x>.<attr>.<layer attribute>`` (``self.fc.weight``)?"""

    def __init__(self, attr: str) -> None:
        self.attr = attr
        self.found: str | None = None

    def visit_Attribute(self, node: cst.Attribute) -> None:
        inner = node.value
        if node.attr.value in _LAYER_ATTRS and isinstance(inner, cst.Attribute) and inner.attr.value == self.attr:
            self.found = _code(node)


def insert_norm(source: str, change: dict[str, Any], path: str) -> str:
    module = _parse(source, path)
    sites = {(s["line"], s["column"]): s for s in change["sites"] if _same_file(s["path"], path)}
    _, found = calls_at(module, list(sites))
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    for site, spec in sites.items():
        call = found.get(site)
        if call is None:
            raise CannotRewrite(f"{path}:{site[0]}: no layer constructor found at this line; run gradlint again")
        name = _dotted(call.func)
        if name is not None and name.split(".")[-1] == "Sequential":
            continue  # already wrapped
        layer = name.split(".")[-1] if name else None
        if layer not in _OUT_ARG or name is None or "." not in name:
            raise CannotRewrite(f"{path}:{site[0]}: `{_code(call)}` is not an nn.Linear/nn.ConvNd call gradlint can wrap; "
                                f"put a {spec['norm']} after this layer by hand")
        prefix = name.rsplit(".", 1)[0]
        out = _arg(call, *_OUT_ARG[layer])
        if out is None or not _pure(out):
            raise CannotRewrite(f"{path}:{site[0]}: the layer's output size is not a plain expression; add "
                                f"{spec['norm']}(<its output size>) after this layer by hand")
        attr = _assigned_attr(module, call)
        if attr is not None:
            use = _AttrUse(attr)
            module.visit(use)
            if use.found:
                raise CannotRewrite(f"{path}:{site[0]}: the file reads `{use.found}`, which an nn.Sequential wrapper "
                                    f"would break; add a {spec['norm']} module after this layer in forward() by hand")
        norm = cst.Call(func=cst.parse_expression(f"{prefix}.{spec['norm']}"), args=[cst.Arg(out)])
        replacements[call] = cst.Call(func=cst.parse_expression(f"{prefix}.Sequential"),
                                      args=[cst.Arg(call, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                                            cst.Arg(norm)])
    return _replace(module, replacements).code


def swap_norm(source: str, change: dict[str, Any], path: str) -> str:
    module = _parse(source, path)
    sites = {(s["line"], s["column"]): s for s in change["sites"] if _same_file(s["path"], path)}
    _, found = calls_at(module, list(sites))
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    for site, spec in sites.items():
        call = found.get(site)
        if call is None:
            raise CannotRewrite(f"{path}:{site[0]}: no normalization constructor found at this line; run gradlint again")
        name = _dotted(call.func)
        old = name.split(".")[-1] if name else None
        if old == spec["to"]:
            continue
        if old not in _FEATURE_ARG or name is None or "." not in name:
            raise CannotRewrite(f"{path}:{site[0]}: `{_code(call)}` is not a normalization constructor gradlint can "
                                f"change; construct {spec['to']} here by hand")
        features = _arg(call, *_FEATURE_ARG[old])
        if features is None or isinstance(features, (cst.Tuple, cst.List)):
            raise CannotRewrite(f"{path}:{site[0]}: the normalized shape is not one size; construct {spec['to']} by hand")
        prefix = name.rsplit(".", 1)[0]
        args = [cst.Arg(cst.Integer("1"), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))] \
            if spec["to"] == "GroupNorm" else []
        args.append(cst.Arg(features))
        eps = next((a for a in call.args if a.keyword is not None and a.keyword.value == "eps"), None)
        if eps is not None:
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(eps.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        replacements[call] = cst.Call(func=cst.parse_expression(f"{prefix}.{spec['to']}"), args=args)
    return _replace(module, replacements).code


# -- residual ------------------------------------------------------------------------------------------

def _class(module: cst.Module, name: str, path: str) -> cst.ClassDef:
    for stmt in module.body:
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == name:
            return stmt
    raise CannotRewrite(f"{path}: no top-level class {name}; make the change by hand")


def _method(cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    for stmt in cls.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            return stmt
    return None


class _Bindings(cst.CSTVisitor):
    """Names a function body binds, and its return statements (nested functions excluded)."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.returns: list[cst.Return] = []
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return self.depth == 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Return(self, node: cst.Return) -> None:
        self.returns.append(node)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._names(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._names(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._names(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._names(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._names(node.target)

    def _names(self, target: cst.BaseExpression) -> None:
        for n in _find_all(target, cst.Name):
            self.bound.add(n.value)


def _first_param(fn: cst.FunctionDef) -> str | None:
    """The tensor argument of ``forward(self, x, ...)``."""
    params = fn.params.params
    return params[1].name.value if len(params) >= 2 else None


def _is_sum_with(expr: cst.BaseExpression, name: str) -> bool:
    return isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add) \
        and isinstance(expr.left, cst.Name) and expr.left.value == name


def _plus(name: str, expr: cst.BaseExpression) -> cst.BinaryOperation:
    if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation, cst.IfExp, cst.Lambda, cst.NamedExpr)):
        expr = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.BinaryOperation(left=cst.Name(name), operator=cst.Add(whitespace_before=cst.SimpleWhitespace(" "),
                                                                       whitespace_after=cst.SimpleWhitespace(" ")),
                               right=expr)


def residual(source: str, change: dict[str, Any], path: str) -> str:
    module = _parse(source, path)
    cls = _class(module, change["class"], path)
    fn = _method(cls, "forward")
    if fn is None:
        raise CannotRewrite(f"{path}: {change['class']} has no forward method of its own; add the residual by hand")
    if change["form"] == "block":
        new_fn = _block_residual(fn, path, change["class"])
    else:
        new_fn = _loop_residual(fn, path, change["class"], change["attr"])
    if new_fn is fn:
        return source
    return _replace(module, {fn: new_fn}).code


def _block_residual(fn: cst.FunctionDef, path: str, cls: str) -> cst.FunctionDef:
    x = _first_param(fn)
    if x is None:
        raise CannotRewrite(f"{path}: {cls}.forward takes no input argument; add the residual by hand")
    b = _Bindings()
    fn.visit(b)
    body = list(fn.body.body)
    last = body[-1] if body else None
    ret = last.body[0] if isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1 \
        and isinstance(last.body[0], cst.Return) else None
    if ret is None or len(b.returns) != 1 or ret.value is None:
        raise CannotRewrite(f"{path}: {cls}.forward does not end in its only `return <expr>`; return "
                            f"`{x} + <block output>` by hand")
    src = x
    if _is_sum_with(ret.value, x) or _is_sum_with(ret.value, "identity"):
        return fn  # already residual
    if x in b.bound:  # the input is overwritten on the way: keep it first
        if "identity" in b.bound:
            raise CannotRewrite(f"{path}: {cls}.forward reassigns `{x}`; keep a copy of the input and return it "
                                "plus the block's output by hand")
        src = "identity"
    new_ret = ret.with_changes(value=_plus(src, ret.value))
    body[-1] = last.with_changes(body=[new_ret])  # type: ignore[union-attr]
    if src == "identity":
        keep = cst.parse_statement(f"identity = {x}\n")
        at = 1 if body and _is_docstring(body[0]) else 0
        body.insert(at, keep)
    return fn.with_changes(body=fn.body.with_changes(body=body))


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr) \
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))


def _loop_residual(fn: cst.FunctionDef, path: str, cls: str, attr: str) -> cst.FunctionDef:
    loops = [loop for loop in _find_all(fn, cst.For)
             if any(_dotted(a) == f"self.{attr}" for a in _find_all(loop.iter, cst.Attribute))]
    if len(loops) != 1:
        raise CannotRewrite(f"{path}: {cls}.forward does not iterate over self.{attr} in one `for` loop; write "
                            f"`x = x + layer(x)` in the loop over self.{attr} by hand")
    loop = loops[0]
    stmts = [s for s in loop.body.body if isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1
             and isinstance(s.body[0], cst.Assign) and len(s.body[0].targets) == 1
             and isinstance(s.body[0].targets[0].target, cst.Name)]
    updates = []
    for s in stmts:
        assign = s.body[0]
        name = assign.targets[0].target.value  # type: ignore[union-attr]
        if any(n.value == name for n in _find_all(assign.value, cst.Name)):
            updates.append((s, assign, name))
    if len(updates) != 1:
        raise CannotRewrite(f"{path}: the loop over self.{attr} in {cls}.forward does not update its tensor in one "
                            "statement `x = f(x)`; make it `x = x + f(x)` by hand")
    s, assign, name = updates[0]
    if _is_sum_with(assign.value, name):
        return fn
    new_stmt = s.with_changes(body=[assign.with_changes(value=_plus(name, assign.value))])
    new_loop = loop.with_changes(body=loop.body.with_changes(
        body=[new_stmt if b is s else b for b in loop.body.body]))
    return _replace_in(fn, {loop: new_loop})


def _replace_in(node: cst.FunctionDef, replacements: dict) -> cst.FunctionDef:
    return node.visit(_Replace(replacements))  # type: ignore[return-value]


# -- init --------------------------------------------------------------------------------------------------

def init_body(change: dict[str, Any], nn: str, var: str) -> list[str]:
    types = ", ".join(f"{nn}.{t}" for t in change["types"])
    law, gain = change["law"], change["gain"]
    if law == "kaiming_normal":
        extra = f", a={change['slope']:g}" if change.get("slope") else ""
        call = f"{nn}.init.kaiming_normal_(m.weight, nonlinearity=\"{change.get('nonlinearity') or 'relu'}\"{extra})"
    elif law == "xavier_normal":
        call = f"{nn}.init.xavier_normal_(m.weight, gain={gain:g})"
    elif law == "orthogonal":
        call = f"{nn}.init.orthogonal_(m.weight, gain={gain:g})"
    elif law == "scaled_normal":
        call = f"{nn}.init.normal_(m.weight, std={gain:g} / m.weight[0].numel() ** 0.5)"
    else:
        raise CannotRewrite(f"unknown init law {law!r}")
    heads = change.get("heads") or []
    if not heads:
        return [f"for m in {var}.modules():", f"    if isinstance(m, ({types},)):", f"        {call}",
                "        if m.bias is not None:", f"            {nn}.init.zeros_(m.bias)"]
    # output layers get unit gain whatever the hidden layers get: the outputs keep their inputs' scale
    return [f"for name, m in {var}.named_modules():",
            f"    if isinstance(m, ({types},)):",
            f"        if name in ({', '.join(repr(h) for h in heads)},):",
            f"            {nn}.init.normal_(m.weight, std=1 / m.weight[0].numel() ** 0.5)",
            "        else:",
            f"            {call}",
            "        if m.bias is not None:",
            f"            {nn}.init.zeros_(m.bias)"]


def init(source: str, change: dict[str, Any], path: str, note: str = "") -> str:
    module = _parse(source, path)
    nn = nn_prefix(module)
    if nn is None:  # a file that only calls a library's constructor (timm.create_model): import torch
        if _binds_torch(module):
            raise CannotRewrite(f"{path} binds the name `torch` to something else; add the init by hand")
        module = _with_import_torch(module)
        nn = "torch.nn"
    host = change["host"]
    comment = f"# {note}" if note else "# gradlint --fix"
    if host.get("class"):
        return _init_method(module, host["class"], change, nn, comment, path).code
    if host.get("function"):
        return _init_wrapper(module, host["function"], change, nn, comment, path).code
    raise CannotRewrite("the fix names no class or function to put the init in")


def _binds_torch(module: cst.Module) -> bool:
    b = _Bindings()
    for stmt in module.body:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and stmt.name.value == "torch":
            return True
        if not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            stmt.visit(b)
    return "torch" in b.bound


def _with_import_torch(module: cst.Module) -> cst.Module:
    """``import torch`` after the module's last top-level import (after its docstring if none)."""
    body = list(module.body)
    at = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(x, (cst.Import, cst.ImportFrom)) for x in stmt.body):
            at = i + 1
        elif i == 0 and _is_docstring(stmt):
            at = 1
    body.insert(at, cst.parse_statement("import torch\n"))
    return module.with_changes(body=body)


def _init_method(module: cst.Module, name: str, change: dict, nn: str, comment: str, path: str) -> cst.Module:
    cls = _class(module, name, path)
    lines = [f"def {INIT_METHOD}(self) -> None:", f"    {comment}"] + ["    " + ln for ln in init_body(change, nn, "self")]
    method = cst.parse_statement("\n".join(lines) + "\n")
    body = list(cls.body.body)
    existing = _method(cls, INIT_METHOD)
    ctor = _method(cls, "__init__")
    if existing is not None:
        body[body.index(existing)] = method.with_changes(leading_lines=existing.leading_lines)  # type: ignore[union-attr]
    else:
        at = body.index(ctor) + 1 if ctor is not None else len(body)
        body.insert(at, method.with_changes(leading_lines=[cst.EmptyLine(indent=False)]))  # type: ignore[union-attr]
    if ctor is None:
        new_ctor = cst.parse_statement(
            f"def __init__(self, *args, **kwargs) -> None:\n    super().__init__(*args, **kwargs)\n    self.{INIT_METHOD}()\n")
        at = 1 if body and _is_docstring(body[0]) else 0
        body.insert(at, new_ctor)
    else:
        if not _calls_init_method(ctor):
            if any(isinstance(r, cst.Return) for r in _find_all(ctor, cst.Return)):
                raise CannotRewrite(f"{path}: {name}.__init__ returns early; call self.{INIT_METHOD}() at its end by hand")
            call = cst.parse_statement(f"self.{INIT_METHOD}()\n")
            ctor_body = list(ctor.body.body) + [call]
            body[body.index(ctor)] = ctor.with_changes(body=ctor.body.with_changes(body=ctor_body))
    return module.with_changes(body=[cls.with_changes(body=cls.body.with_changes(body=body)) if s is cls else s
                                     for s in module.body])


def _calls_init_method(fn: cst.FunctionDef) -> bool:
    return any(_dotted(c.func) == f"self.{INIT_METHOD}" for c in _find_all(fn, cst.Call))


def _init_wrapper(module: cst.Module, name: str, change: dict, nn: str, comment: str, path: str) -> cst.Module:
    fn = next((s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == name), None)
    if fn is None:
        raise CannotRewrite(f"{path}: no top-level function {name}; add the init by hand")
    lines = [f"def {INIT_METHOD}(model):", f"    {comment}"] + ["    " + ln for ln in init_body(change, nn, "model")] \
        + ["    return model"]
    helper = cst.parse_statement("\n".join(lines) + "\n").with_changes(leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False)])
    b = _Bindings()
    fn.visit(b)
    if not b.returns or any(r.value is None for r in b.returns):
        raise CannotRewrite(f"{path}: {name}() does not return its model in `return <expr>`; add the init by hand")
    replacements = {}
    for r in b.returns:
        v = r.value
        if isinstance(v, cst.Call) and _dotted(v.func) == INIT_METHOD:
            continue
        replacements[r] = r.with_changes(value=cst.Call(func=cst.Name(INIT_METHOD), args=[cst.Arg(v)]))
    new_fn = _replace_in(fn, replacements)
    body = []
    replaced = False
    for s in module.body:
        if isinstance(s, cst.FunctionDef) and s.name.value == INIT_METHOD:
            body.append(helper.with_changes(leading_lines=s.leading_lines))
            replaced = True
        elif s is fn:
            body.append(new_fn)
            if not replaced and not any(isinstance(t, cst.FunctionDef) and t.name.value == INIT_METHOD
                                        for t in module.body):
                body.append(helper)
                replaced = True
        else:
            body.append(s)
    return module.with_changes(body=body)


# -- dispatch ---------------------------------------------------------------------------------------------

CODEMODS: dict[str, Callable[..., str]] = {
    "init": init, "swap_activation": swap_activation, "insert_norm": insert_norm, "swap_norm": swap_norm,
    "residual": residual,
}


def change_paths(change: dict[str, Any]) -> list[str]:
    """The files a change edits."""
    if change["op"] == "init":
        return [change["host"]["path"]]
    if "sites" in change:
        return list(dict.fromkeys(s["path"] for s in change["sites"]))
    return [change["path"]]


def apply_change(source: str, change: dict[str, Any], path: str, note: str = "") -> str:
    """``source`` (the text of ``path``) with one change applied."""
    if _generated(source):
        raise CannotRewrite(f"{path} looks generated (its header says so); change its generator instead")
    op = change.get("op")
    if op not in CODEMODS:
        raise CannotRewrite(f"no codemod for {op!r}")
    if op == "init":
        return init(source, change, path, note)
    return CODEMODS[op](source, change, path)


def _same_file(a: str, b: str) -> bool:
    import os

    return os.path.realpath(a) == os.path.realpath(b)
