"""What a model file's source says, read with the standard library's ``ast`` (no third-party
import on the cold path) without running any of it: which module-level
functions return a model (factories), which constructor calls have only literal arguments, which
names each class uses, and which names the module binds.

Discovery (``discover.py``) resolves these names in the imported module to decide what to build;
nothing here calls a function or evaluates an expression.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# Methods that return the model they are called on: ``return Net().to(device).eval()`` returns a Net.
_SAME_MODEL_METHODS = frozenset({"to", "eval", "train", "float", "double", "cpu", "requires_grad_"})


@dataclass(frozen=True)
class Call:
    """One call in the source: ``ResNet(BasicBlock, [2, 2, 2, 2])`` at ``line``."""

    callee: str  # dotted name as written: "ResNet", "nn.Sequential", "models.resnet18"
    text: str  # the call as written, on one line
    line: int
    literal: bool  # every argument is a Python literal (safe to evaluate as a target)


@dataclass
class FileScan:
    # module-level function -> the callees its return values come from; absent when a return
    # gives something else (a tuple, a name not assigned from a call, nothing)
    returns: dict[str, list[str]] = field(default_factory=dict)
    # module-level function -> attributes of module-level objects it returns (``return yolo.model``)
    returns_held: dict[str, list[str]] = field(default_factory=dict)
    returning: set[str] = field(default_factory=set)  # module-level functions returning something object-like
    calls: list[Call] = field(default_factory=list)  # every call with literal arguments, in order
    class_uses: dict[str, set[str]] = field(default_factory=dict)  # class -> names its body mentions
    class_calls: dict[str, set[str]] = field(default_factory=dict)  # class -> callees its body calls
    function_uses: dict[str, set[str]] = field(default_factory=dict)  # module-level function -> names
    module_names: set[str] = field(default_factory=set)  # names bound at module level, outside __main__


def dotted(node: ast.AST | None) -> str | None:
    """``nn.Sequential`` for an Attribute chain of Names, ``Net`` for a Name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _is_main_guard(node: ast.If) -> bool:
    """``if __name__ == "__main__":``"""
    test = node.test
    if not isinstance(test, ast.Compare) or len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    strings = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and strings)


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _literal_arguments(call: ast.Call) -> bool:
    """Every argument, positional or keyword, is a literal (``*args`` and ``**kwargs`` are not)."""
    return (all(not isinstance(a, ast.Starred) and _literal(a) for a in call.args)
            and all(k.arg is not None and _literal(k.value) for k in call.keywords))


class _Text:
    """The source of a node on one line, as written (``ast.get_source_segment`` without its
    per-call split of the whole text); still valid Python on that one line."""

    def __init__(self, text: str) -> None:
        # the byte offset of each line, split where the parser splits (\n, \r\n, \r): str.splitlines
        # also splits at form feeds and \u2028, and the line numbers would drift
        self.starts = [0]
        for line in re.split(r"(?<=\n)|(?<=\r)(?!\n)", text):
            self.starts.append(self.starts[-1] + len(line.encode("utf-8")))
        self.data = text.encode("utf-8")

    def of(self, node: ast.AST) -> str:
        begin = self.starts[node.lineno - 1] + node.col_offset
        stop = self.starts[node.end_lineno - 1] + node.end_col_offset
        text = " ".join(self.data[begin:stop].decode("utf-8", errors="replace").split())
        try:
            ast.parse(text, mode="eval")
        except SyntaxError:  # a comment inside a call written over several lines swallows the rest
            return ast.unparse(node)
        return text


def scan_source(text: str) -> FileScan:
    """Read ``text`` (a whole module); raises SyntaxError on broken code."""
    tree = ast.parse(text)
    source = _Text(text)
    out = FileScan()

    class Visitor(ast.NodeVisitor):
        def __init__(self) -> None:
            self.scopes: list[tuple[str, str]] = []  # ("class" | "def", name), outermost first
            self.in_main = 0

        def _owner(self) -> tuple[str, str] | None:
            return self.scopes[0] if self.scopes else None

        def _scoped(self, kind: str, node: ast.AST) -> None:
            self.scopes.append((kind, node.name))
            self._uses(node.name)
            self.generic_visit(node)
            self.scopes.pop()

        # -- where we are --------------------------------------------------------------------
        def visit_ClassDef(self, node: ast.ClassDef) -> None:
            if not self.scopes:
                out.class_uses.setdefault(node.name, set())
                out.class_calls.setdefault(node.name, set())
                if not self.in_main:
                    out.module_names.add(node.name)
            self._scoped("class", node)

        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            if not self.scopes:
                out.function_uses.setdefault(node.name, set())
                if not self.in_main:
                    out.module_names.add(node.name)
                    _read_returns(node, out)
            self._scoped("def", node)

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_If(self, node: ast.If) -> None:
            guard = not self.scopes and _is_main_guard(node)
            self.in_main += guard
            self.generic_visit(node)
            self.in_main -= guard

        # -- what it says --------------------------------------------------------------------
        def _uses(self, name: str | None) -> None:
            owner = self._owner()
            if owner is not None and name:
                table = out.class_uses if owner[0] == "class" else out.function_uses
                table.setdefault(owner[1], set()).add(name)

        # every identifier written in a body: names, attributes (``models.Block``), parameters,
        # keywords, nested definitions and imports
        def visit_Name(self, node: ast.Name) -> None:
            self._uses(node.id)

        def visit_Attribute(self, node: ast.Attribute) -> None:
            self._uses(node.attr)
            self.generic_visit(node)

        def visit_arg(self, node: ast.arg) -> None:
            self._uses(node.arg)
            self.generic_visit(node)

        def visit_keyword(self, node: ast.keyword) -> None:
            self._uses(node.arg)
            self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            for part in (node.module or "").split("."):
                self._uses(part)
            self.generic_visit(node)

        def visit_alias(self, node: ast.alias) -> None:
            for part in node.name.split("."):
                self._uses(part)
            self._uses(node.asname)

        def visit_Call(self, node: ast.Call) -> None:
            callee = dotted(node.func)
            if callee is not None:
                owner = self._owner()
                if owner is not None and owner[0] == "class":
                    out.class_calls.setdefault(owner[1], set()).add(callee)
                if (node.args or node.keywords) and _literal_arguments(node):
                    out.calls.append(Call(callee, source.of(node), node.lineno, True))
            self.generic_visit(node)

        def visit_Assign(self, node: ast.Assign) -> None:
            if not self.scopes and not self.in_main:
                for t in node.targets:
                    out.module_names.update(_bound_names(t))
            self.generic_visit(node)

        def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
            if not self.scopes and not self.in_main and node.value is not None:
                out.module_names.update(_bound_names(node.target))
            self.generic_visit(node)

    Visitor().visit(tree)
    return out


def _read_returns(fn: ast.FunctionDef | ast.AsyncFunctionDef, out: FileScan) -> None:
    """The callees a module-level function's return values come from, or nothing."""
    assigned: dict[str, list] = {}
    returns: list = []
    _collect(fn, assigned, returns)
    if any(isinstance(v, (ast.Call, ast.Attribute, ast.Name, ast.Subscript)) for v in returns):
        out.returning.add(fn.name)  # not a literal, a comparison or a string
    held = [dotted(v) for v in returns]
    if returns and all(h and h.split(".")[0] not in assigned and "." in h for h in held):
        out.returns_held[fn.name] = list(dict.fromkeys(held))  # ``return yolo.model``
        return
    callees: list[str] = []
    for value in returns:
        found = _callees_of(value, assigned)
        if not found:
            return
        callees += found
    if callees:
        out.returns[fn.name] = list(dict.fromkeys(callees))


def _bound_names(target: ast.AST) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {n for el in target.elts for n in _bound_names(el.value if isinstance(el, ast.Starred) else el)}
    return set()


def _collect(node: ast.AST, assigned: dict[str, list], returns: list) -> None:
    """Return values and ``name = value`` assignments of one function body (not nested ones)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(child, ast.Return):
            returns.append(child.value)
        elif isinstance(child, ast.Assign):
            for t in child.targets:
                if isinstance(t, ast.Name):
                    assigned.setdefault(t.id, []).append(child.value)
        elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name) and child.value is not None:
            assigned.setdefault(child.target.id, []).append(child.value)
        _collect(child, assigned, returns)


def _callees_of(value: ast.AST | None, assigned: dict[str, list], depth: int = 0) -> list[str]:
    """The constructor or factory a returned expression comes from: ``Net(...)``,
    ``Net(...).to(device)``, or a local name assigned from one of those."""
    if value is None or depth > 4:
        return []
    while (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
           and value.func.attr in _SAME_MODEL_METHODS and isinstance(value.func.value, (ast.Call, ast.Name))):
        value = value.func.value
    if isinstance(value, ast.Call):
        callee = dotted(value.func)
        return [callee] if callee else []
    if isinstance(value, ast.Name) and value.id in assigned:
        found: list[str] = []
        for v in assigned[value.id]:
            got = _callees_of(v, assigned, depth + 1)
            if not got:
                return []
            found += got
        return found
    return []


@functools.lru_cache(maxsize=256)
def _scan_cached(path: str, mtime_ns: int, size: int) -> FileScan | None:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        return scan_source(text)
    except Exception:  # noqa: BLE001 - a file Python cannot parse: nothing read from it
        return None


def scan_file(path: str | Path) -> FileScan | None:
    """``scan_source`` of a file, cached on its size and modification time; None if unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _scan_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def find_calls(path: str | Path, name: str) -> list[Call]:
    """Every call of ``name`` (``Name(...)`` or ``x.Name(...)``) in a file, with its arguments
    as written, literal or not. A cheap text check comes first: most files never mention it."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if f"{name}(" not in text:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # unparsable: no calls read
        return []
    source = _Text(text)
    calls = sorted((node for node in ast.walk(tree) if isinstance(node, ast.Call)),
                   key=lambda node: (node.lineno, node.col_offset))  # in the order they are written
    return [Call(callee, source.of(node), node.lineno, _literal_arguments(node))
            for node in calls for callee in [dotted(node.func)] if callee and callee.split(".")[-1] == name]
