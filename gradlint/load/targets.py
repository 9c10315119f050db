"""Target specs (a contract): ``file.py``, ``file.py::build``, ``'file.py::GPT(GPTConfig(n_layer=4))'``,
``dir/``.

After ``::`` comes any Python expression, evaluated later in the namespace of the imported file
(so the file's own classes, config objects and imports can be used). A bare name is called with
no arguments when it names a class or a function; an expression is taken as it evaluates. Parsing
is pure Python (no torch, no user code) so that bad targets are reported before anything heavy
loads.
"""

from __future__ import annotations

import ast
import errno
import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

# Folders never worth descending into when a directory is given.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "env", ".env", ".tox", ".nox",
     "node_modules", "site-packages", "build", "dist", ".mypy_cache", ".pytest_cache",
     ".ruff_cache", ".gradlint_cache", ".eggs"}
)


class TargetError(ValueError):
    """A target spec that cannot be understood; the message says how to fix it."""


@dataclass(frozen=True)
class Target:
    """One file, optionally narrowed to one expression evaluated in the file's namespace."""

    path: str
    expr: str | None = None  # the text after '::', as the user wrote it (re-runnable)

    @property
    def spec(self) -> str:
        return self.path if self.expr is None else f"{self.path}::{self.expr}"

    @property
    def is_name(self) -> bool:
        """``file.py::Net``: a name to call with no arguments (or a module instance to take)."""
        return self.expr is not None and self.expr.isidentifier()

    @property
    def name(self) -> str | None:
        """The name the expression starts from (``GPT`` for ``GPT(GPTConfig())``), for messages."""
        if self.expr is None:
            return None
        node = ast.parse(self.expr, mode="eval").body
        while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return node.id if isinstance(node, ast.Name) else self.expr

    def with_expr(self, expr: str) -> "Target":
        return Target(self.path, expr)


def parse_target(spec: str) -> Target:
    """Parse ``path[::expression]``; raises TargetError with an actionable message."""
    path, sep, rest = spec.partition("::")
    if not path:
        raise TargetError(f"{spec}: empty path; expected path/to/model.py[::Name]")
    if not sep:
        return Target(path)
    rest = rest.strip()
    if not rest:
        raise TargetError(f"{spec}: nothing after '::'; expected a name or an expression, e.g. "
                          "'model.py::Net(depth=20)'")
    try:
        ast.parse(rest, mode="eval")
    except SyntaxError as e:
        raise TargetError(
            f"{spec}: {rest!r} is not a Python expression ({e.msg}); expected a name or an expression "
            "evaluated in the file, e.g. 'model.py::Net(depth=20)' or 'model.py::GPT(GPTConfig(n_layer=4))'"
        ) from None
    return Target(path, rest)


@dataclass
class Expansion:
    targets: list[Target] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each: "path: reason"
    skipped: list[str] = field(default_factory=list)  # files of a folder that cannot be read, and why


def expand_targets(specs: list[str], exclude: list[str] | None = None) -> Expansion:
    """Turn CLI specs into per-file targets: folders become their .py files, sorted."""
    out = Expansion()
    exclude = exclude or []
    seen: set[Target] = set()

    def add(t: Target) -> None:
        if t not in seen:
            seen.add(t)
            out.targets.append(t)

    for spec in specs:
        try:
            target = parse_target(spec)
        except TargetError as e:
            out.errors.append(str(e))
            continue
        p = Path(target.path)
        problem = unreadable(p)
        if problem is None and p.is_dir():
            if target.expr is not None:
                out.errors.append(f"{spec}: '::' needs a file, not a folder")
                continue
            for f in iter_python_files(p, exclude):
                why = unreadable(f)
                if why is not None:
                    out.skipped.append(f"skipped {f}: {why}")
                elif could_define_model(f):
                    add(Target(str(f)))
        elif problem is None:
            add(target)
        else:
            out.errors.append(f"{target.path}: {problem}")
    return out


def unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be analysed (a symlink loop, a dangling link, a FIFO or device, which
    would block a read), or None for a regular file or a folder."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        if os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        if e.errno == errno.ENOENT:
            return "no such file or folder"
        return f"cannot be read ({e.strerror})"
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
    return f"not a regular file but {kind}"


# A file found by walking a folder is imported only if it could define a model at all: this keeps
# `gradlint src/` from running every script in the tree, and a folder of thousands of files fast.
_MAYBE_MODEL = re.compile(rb"torch|Module|transformers|timm")


def could_define_model(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return bool(_MAYBE_MODEL.search(fh.read(1_000_000)))
    except OSError:
        return True  # let the import report the problem


def _excluded(path: Path, exclude: list[str]) -> bool:
    s = path.as_posix()
    return any(fnmatch.fnmatch(s, pat) or fnmatch.fnmatch(path.name, pat) for pat in exclude)


def iter_python_files(root: Path, exclude: list[str]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIRS and not d.startswith(".") and not _excluded(Path(dirpath, d), exclude)
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                f = Path(dirpath, name)
                if not _excluded(f, exclude):
                    found.append(f)
    return found
