"""Reading the user's source: suppression comments (libcst) and weight-initialization code (ast).

Parsed once per file and cached; a file that cannot be parsed yields nothing (its import already
failed with GL001). The init-code scan runs on every model whose weights leave the question open,
so it uses the standard library's ``ast`` (about 1 ms a file); libcst, which keeps comments, is
imported only when there are findings to check for ``# noqa`` (its import alone costs ~0.3 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# flake8's noqa: "# noqa", "# noqa: GL101", "# noqa:GL101,GL102", case-insensitive.
NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
FILE_NOQA = re.compile(r"#\s*gradlint:\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)

# Calls that (re)initialize weights, by the last name in the call.
INIT_CALLS = frozenset({
    "normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "orthogonal_", "zeros_", "ones_", "constant_", "eye_", "dirac_", "sparse_",
    "fill_", "zero_", "copy_", "lecun_normal_", "variance_scaling_", "init_weights",
})
# Method definitions that customize initialization.
INIT_DEFS = frozenset({"reset_parameters", "_reset_parameters", "_init_weights", "init_weights",
                       "initialize_weights", "_initialize_weights", "weights_init", "init_params",
                       "_init_params"})


@dataclass
class SourceFacts:
    noqa: dict[int, frozenset[str] | None] = field(default_factory=dict)  # line -> codes (None: all)
    file_noqa: frozenset[str] | None | bool = False  # False: none; None: all codes; set: those


@lru_cache(maxsize=512)
def _scan_cached(path: str, mtime_ns: int, size: int) -> SourceFacts:
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    facts = SourceFacts()
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        module = cst.parse_module(text)
    except Exception:  # noqa: BLE001 - unparsable files carry no suppressions
        return facts
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)

    class Visitor(cst.CSTVisitor):
        def visit_Comment(self, node: cst.Comment) -> None:
            line = positions[node].start.line
            m = FILE_NOQA.search(node.value)
            if m:
                codes = _codes(m.group("codes"))
                if codes is None:
                    facts.file_noqa = None
                elif facts.file_noqa is not None:
                    facts.file_noqa = (facts.file_noqa or frozenset()) | codes
                return
            m = NOQA.search(node.value)
            if m:
                codes = _codes(m.group("codes"))
                prev = facts.noqa.get(line, frozenset())
                facts.noqa[line] = None if codes is None or prev is None else prev | codes

    wrapper.visit(Visitor())
    return facts


def _codes(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(c.upper() for c in re.split(r"[,\s]+", text.strip()) if c)


@lru_cache(maxsize=512)
def _init_sites_cached(path: str, mtime_ns: int, size: int) -> tuple[tuple[int, int, str], ...]:
    import ast

    try:
        tree = ast.parse(Path(path).read_bytes())
    except (SyntaxError, ValueError, OSError):
        return ()
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in INIT_CALLS or (name == "apply" and node.args):
                sites.append((node.lineno, node.col_offset + 1, name))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in INIT_DEFS:
            sites.append((node.lineno, node.col_offset + 1, f"def {node.name}"))
    return tuple(sorted(sites))


def init_sites(path: str) -> tuple[tuple[int, int, str], ...]:
    """(line, column, what) of every weight-initialization call or method in the file."""
    try:
        st = Path(path).stat()
    except OSError:
        return ()
    return _init_sites_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def scan(path: str) -> SourceFacts:
    try:
        st = Path(path).stat()
    except OSError:
        return SourceFacts()
    return _scan_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def is_suppressed(path: str, line: int, code: str) -> bool:
    facts = scan(path)
    if facts.file_noqa is None or (facts.file_noqa and code in facts.file_noqa):
        return True
    if line in facts.noqa:
        codes = facts.noqa[line]
        return codes is None or code in codes or any(code.startswith(c) for c in codes)
    return False
