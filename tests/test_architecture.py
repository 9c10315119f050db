"""The package's shape, checked: stages only look downstream, no import cycles, every cited
document exists.

Imports are read with ``ast`` from every module, those inside functions included (a lazy import
is still a dependency). The layers, lowest first:

    core (config, ir) <- load <- capture <- {estimate, verify} <- rules <- advise <- pipeline
    <- report <- {cli, api, lsp, testing, training, fix}

A module may import its own layer or a lower one. ``estimate`` and ``verify`` are siblings: they
never import each other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gradlint"

# (layer, module prefixes), lowest first. The longest matching prefix decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("gradlint.version", "gradlint.config", "gradlint.ir")),
    ("load", ("gradlint.load",)),
    ("capture", ("gradlint.capture",)),
    ("engine", ("gradlint.estimate", "gradlint.verify")),
    ("rules", ("gradlint.rules",)),
    ("advise", ("gradlint.advise",)),
    ("pipeline", ("gradlint.pipeline",)),
    ("report", ("gradlint.report",)),
    ("front", ("gradlint.cli", "gradlint.api", "gradlint.lsp", "gradlint.testing", "gradlint.training", "gradlint.fix",
               "gradlint.__main__")),
]
# The package itself (``gradlint/__init__.py``) is the public face: ``gradlint.analyze``.
FRONT_PACKAGE = "gradlint"
SIBLINGS = [("gradlint.estimate", "gradlint.verify")]

# Modules allowed at the package root: the public surface and the bottom layer's settings.
ROOT_MODULES = {"__init__", "__main__", "version", "config", "api", "cli", "testing"}

# Known violations, to shrink to nothing: (importer, imported).
ALLOWED_UPWARD: set[tuple[str, str]] = set()
ALLOWED_CYCLES: list[set[str]] = []


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (p, is_pkg)
    return out


def _targets(mod: str, is_pkg: bool, node: ast.AST, known: dict) -> list[str]:
    found = []
    if isinstance(node, ast.Import):
        found = [a.name for a in node.names if a.name.split(".")[0] == "gradlint"]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        if prefix.split(".")[0] != "gradlint":
            return []
        for a in node.names:
            sub = f"{prefix}.{a.name}"
            found.append(sub if sub in known else prefix)
    out = []
    for name in found:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != mod:
            out.append(name)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for mod, (path, is_pkg) in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(_targets(mod, is_pkg, node, known))
        graph[mod] = deps
    return graph


def layer_of(mod: str) -> int:
    if mod == FRONT_PACKAGE:
        return len(LAYERS) - 1
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"{mod} belongs to no layer: add it to LAYERS in {Path(__file__).name}")
    return best


def _sibling_violation(a: str, b: str) -> bool:
    for x, y in SIBLINGS:
        for p, q in ((x, y), (y, x)):
            if (a == p or a.startswith(p + ".")) and (b == q or b.startswith(q + ".")):
                return True
    return False


def upward_imports(graph: dict[str, set[str]] | None = None) -> set[tuple[str, str]]:
    graph = import_graph() if graph is None else graph
    bad = set()
    for mod, deps in graph.items():
        for dep in deps:
            if layer_of(dep) > layer_of(mod) or _sibling_violation(mod, dep):
                bad.add((mod, dep))
    return bad


def cycles(graph: dict[str, set[str]] | None = None) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph = import_graph() if graph is None else graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for mod in modules():
        layer_of(mod)


def test_no_upward_imports():
    bad = upward_imports()
    new = sorted(bad - ALLOWED_UPWARD)
    assert not new, "imports against the layer order:\n" + "\n".join(
        f"  {a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})" for a, b in new)
    stale = sorted(ALLOWED_UPWARD - bad)
    assert not stale, f"allowlisted violations that are gone (remove them from ALLOWED_UPWARD): {stale}"


def test_no_import_cycles():
    found = cycles()
    new = [c for c in found if c not in ALLOWED_CYCLES]
    assert not new, "import cycles:\n" + "\n".join("  " + " <-> ".join(sorted(c)) for c in new)
    stale = [c for c in ALLOWED_CYCLES if c not in found]
    assert not stale, f"allowlisted cycles that are gone (remove them from ALLOWED_CYCLES): {stale}"


def test_root_holds_only_the_public_surface():
    extra = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ROOT_MODULES)
    assert not extra, f"modules at the package root that belong in a subpackage: {extra}"


def test_the_checker_sees_a_violation():
    """The checks above must be able to fail: planted upward imports and a cycle are caught."""
    graph = {"gradlint.ir.graph": {"gradlint.pipeline"}, "gradlint.pipeline": {"gradlint.ir.graph"},
             "gradlint.verify.passes": {"gradlint.estimate.propagate"}, "gradlint.estimate.propagate": set()}
    assert upward_imports(graph) == {("gradlint.ir.graph", "gradlint.pipeline"),
                                     ("gradlint.verify.passes", "gradlint.estimate.propagate")}
    assert cycles(graph) == [{"gradlint.ir.graph", "gradlint.pipeline"}]


# -- documents ----------------------------------------------------------------------------------

# A docstring or comment citing a document: ``docs/estimator.md``, ``docs/estimator.md, "BatchNorm"``,
# ``DEVELOPERS.md``, ``rules/GL101.md``.
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def cited_documents() -> dict[str, list[str]]:
    cites: dict[str, list[str]] = {}
    for p in PACKAGE.rglob("*.py"):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            for m in CITATION.finditer(line):
                cites.setdefault(m.group(1), []).append(f"{p.relative_to(ROOT)}:{i}")
    return cites


MISSING_DOCUMENTS = {"docs/estimator.md", "rules/GLnnn.md"}  # transitional


def _exists(doc: str) -> bool:
    if doc in MISSING_DOCUMENTS:
        return True
    if "{" in doc:  # a template such as rules/{code}.md
        return True
    return (ROOT / doc).exists()


def test_every_cited_document_is_in_the_repository():
    missing = {doc: where for doc, where in cited_documents().items() if not _exists(doc)}
    assert not missing, "documents cited but absent: " + "; ".join(
        f"{doc} (cited at {', '.join(where[:3])})" for doc, where in sorted(missing.items()))


@pytest.mark.parametrize("doc", ["docs/estimator.md", "DEVELOPERS.md"])
def test_docs_exist(doc):
    assert (ROOT / doc).is_file()
