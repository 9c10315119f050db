"""What a model file's source says, read with libcst without running any of it: which module-level
functions return a model (factories), which constructor calls have only literal arguments, which
names each class uses, and which names the module binds.

Discovery (``discover.py``) resolves these names in the imported module to decide what to build;
nothing here calls a function or evaluates an expression.
"""

from __future__ import annotations

import ast
import functools
import os
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


def dotted(node) -> str | None:
    """``nn.Sequential`` for an Attribute chain of Names, ``Net`` for a Name, else None."""
    import libcst as cst

    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr.value}" if inner else None
    return None


def _is_main_guard(node) -> bool:
    """``if __name__ == "__main__":``"""
    import libcst as cst

    test = node.test
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    sides = [test.left, test.comparisons[0].comparator]
    names = [s for s in sides if isinstance(s, cst.Name) and s.value == "__name__"]
    strings = [s for s in sides if isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__"]
    return bool(names and strings)


def _literal(code: str) -> bool:
    try:
        ast.literal_eval(code)
        return True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def scan_source(text: str) -> FileScan:
    """Read ``text`` (a whole module); raises libcst's ParserSyntaxError on broken code."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    module = cst.parse_module(text)
    wrapper = MetadataWrapper(module)
    out = FileScan()

    def code(node) -> str:
        return " ".join(module.code_for_node(node).split())

    class Visitor(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def __init__(self) -> None:
            self.scopes: list[tuple[str, str]] = []  # ("class" | "def", name), outermost first
            self.in_main = 0

        # -- where we are --------------------------------------------------------------------
        def _owner(self) -> tuple[str, str] | None:
            return self.scopes[0] if self.scopes else None

        def visit_ClassDef(self, node) -> None:
            if not self.scopes:
                out.class_uses.setdefault(node.name.value, set())
                out.class_calls.setdefault(node.name.value, set())
                if not self.in_main:
                    out.module_names.add(node.name.value)
            self.scopes.append(("class", node.name.value))

        def leave_ClassDef(self, node) -> None:
            self.scopes.pop()

        def visit_FunctionDef(self, node) -> None:
            if not self.scopes:
                out.function_uses.setdefault(node.name.value, set())
                if not self.in_main:
                    out.module_names.add(node.name.value)
                    self._read_returns(node)
            self.scopes.append(("def", node.name.value))

        def leave_FunctionDef(self, node) -> None:
            self.scopes.pop()

        def visit_If(self, node) -> None:
            if not self.scopes and _is_main_guard(node):
                self.in_main += 1

        def leave_If(self, node) -> None:
            if not self.scopes and _is_main_guard(node):
                self.in_main -= 1

        # -- what it says --------------------------------------------------------------------
        def visit_Name(self, node) -> None:
            owner = self._owner()
            if owner is not None:
                table = out.class_uses if owner[0] == "class" else out.function_uses
                table.setdefault(owner[1], set()).add(node.value)

        def visit_Call(self, node) -> None:
            callee = dotted(node.func)
            if callee is None:
                return
            owner = self._owner()
            if owner is not None and owner[0] == "class":
                out.class_calls.setdefault(owner[1], set()).add(callee)
            literal = all(arg.star == "" and _literal(code(arg.value)) for arg in node.args)
            if literal and node.args:
                line = self.get_metadata(PositionProvider, node).start.line
                out.calls.append(Call(callee, code(node), line, True))

        def visit_Assign(self, node) -> None:
            if not self.scopes and not self.in_main:
                for t in node.targets:
                    out.module_names.update(_bound_names(t.target))

        def visit_AnnAssign(self, node) -> None:
            if not self.scopes and not self.in_main and node.value is not None:
                out.module_names.update(_bound_names(node.target))

        # -- factories -------------------------------------------------------------------------
        def _read_returns(self, fn) -> None:
            """The callees a module-level function's return values come from, or nothing."""
            assigned: dict[str, list[str]] = {}
            returns: list = []
            _collect(fn.body, assigned, returns)
            if any(isinstance(v, (cst.Call, cst.Attribute, cst.Name, cst.Subscript)) for v in returns):
                out.returning.add(fn.name.value)  # not a literal, a comparison or a string
            held = [dotted(v) for v in returns]
            if returns and all(h and h.split(".")[0] not in assigned and "." in h for h in held):
                out.returns_held[fn.name.value] = list(dict.fromkeys(held))  # ``return yolo.model``
                return
            callees: list[str] = []
            for value in returns:
                found = _callees_of(value, assigned)
                if not found:
                    return
                callees += found
            if callees:
                out.returns[fn.name.value] = list(dict.fromkeys(callees))

    wrapper.visit(Visitor())
    return out


def _bound_names(target) -> set[str]:
    import libcst as cst

    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for el in target.elements for n in _bound_names(el.value)}
    return set()


def _collect(node, assigned: dict[str, list], returns: list) -> None:
    """Return values and ``name = value`` assignments of one function body (not nested ones)."""
    import libcst as cst

    for child in node.children:
        if isinstance(child, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(child, cst.Return):
            returns.append(child.value)
        elif isinstance(child, cst.Assign):
            for t in child.targets:
                if isinstance(t.target, cst.Name):
                    assigned.setdefault(t.target.value, []).append(child.value)
        elif isinstance(child, cst.AnnAssign) and isinstance(child.target, cst.Name) and child.value is not None:
            assigned.setdefault(child.target.value, []).append(child.value)
        _collect(child, assigned, returns)


def _callees_of(value, assigned: dict[str, list], depth: int = 0) -> list[str]:
    """The constructor or factory a returned expression comes from: ``Net(...)``,
    ``Net(...).to(device)``, or a local name assigned from one of those."""
    import libcst as cst

    if value is None or depth > 4:
        return []
    while (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
           and value.func.attr.value in _SAME_MODEL_METHODS and isinstance(value.func.value, (cst.Call, cst.Name))):
        value = value.func.value
    if isinstance(value, cst.Call):
        callee = dotted(value.func)
        return [callee] if callee else []
    if isinstance(value, cst.Name) and value.value in assigned:
        found: list[str] = []
        for v in assigned[value.value]:
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
    except Exception:  # noqa: BLE001 - a file libcst cannot parse: nothing read from it
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
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if f"{name}(" not in text:
        return []
    try:
        module = cst.parse_module(text)
    except Exception:  # noqa: BLE001 - unparsable: no calls read
        return []
    found: list[Call] = []

    class Visitor(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def visit_Call(self, node) -> None:
            callee = dotted(node.func)
            if callee and callee.split(".")[-1] == name:
                text = " ".join(module.code_for_node(node).split())
                literal = all(a.star == "" and _literal(module.code_for_node(a.value)) for a in node.args)
                found.append(Call(callee, text, self.get_metadata(PositionProvider, node).start.line, literal))

    MetadataWrapper(module).visit(Visitor())
    return found
