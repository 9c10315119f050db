"""Importing the user's file the way running it as a script would, minus the script part: its
folder (or its package's root) and the repository's root on ``sys.path``, ``sys.argv`` holding
only the file (so argparse at import sees no gradlint flags), ``if __name__ == "__main__":``
blocks not run, and a list of the project files the import pulled in (for the cache). The working
directory, ``sys.argv`` and ``sys.path`` are put back afterwards (keeping the folders gradlint
added: constructors and forwards may import lazily)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import os
import re
import sys
import types
from pathlib import Path
from typing import Any, Iterator

from ..ir.source import is_library_file

# What marks a repository's root folder (the nearest one above the file wins).
REPOSITORY_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


# Absolute path -> source text to import instead of the file's bytes on disk: the editor's buffer,
# for the language server. Set in the analysis worker only.
SOURCE_OVERRIDES: dict[str, str] = {}


class _BufferLoader(importlib.machinery.SourceFileLoader):
    """Imports a file from ``SOURCE_OVERRIDES`` (never from its bytecode cache, which holds the
    disk's version), and puts the text in ``linecache`` so tracebacks and source lookups agree."""

    def get_code(self, fullname):  # noqa: ANN001
        text = SOURCE_OVERRIDES[self.path]
        linecache.cache[self.path] = (len(text), None, text.splitlines(True), self.path)
        return compile(text, self.path, "exec", dont_inherit=True)


class _BufferFinder(importlib.abc.MetaPathFinder):
    """Finds modules as usual and swaps in ``_BufferLoader`` for an overridden file (a target
    inside a package is imported by its dotted name)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if not SOURCE_OVERRIDES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.origin is None or os.path.realpath(spec.origin) not in SOURCE_OVERRIDES:
            return None
        real = os.path.realpath(spec.origin)
        return importlib.util.spec_from_file_location(fullname, real, loader=_BufferLoader(fullname, real),
                                                      submodule_search_locations=spec.submodule_search_locations)


def source_bytes(path: str) -> bytes:
    """The source gradlint analyses for ``path``: the editor's buffer when one was given, else the
    file on disk (OSError when it cannot be read)."""
    text = SOURCE_OVERRIDES.get(os.path.realpath(path)) if SOURCE_OVERRIDES else None
    return text.encode("utf-8") if text is not None else Path(path).read_bytes()


def _use_buffers() -> None:
    if SOURCE_OVERRIDES and not any(isinstance(f, _BufferFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _BufferFinder())


def _file_spec(name: str, file: Path):
    """The import spec of a target file (from the override when there is one)."""
    real = os.path.realpath(file)
    if real in SOURCE_OVERRIDES:
        return importlib.util.spec_from_file_location(name, real, loader=_BufferLoader(name, real))
    return importlib.util.spec_from_file_location(name, file)


@contextlib.contextmanager
def user_stdout_to_stderr():
    """User code that prints must not corrupt ``--format json`` on stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


@contextlib.contextmanager
def running_as_script(path: str | Path) -> Iterator[None]:
    """``sys.argv == [path]`` while user code runs, as for ``python path``: a module-level
    ``parser.parse_args()`` sees no gradlint flags (and takes its defaults). The working directory
    and ``sys.argv`` are restored afterwards, whatever the code did."""
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = [str(path)]
    try:
        yield
    finally:
        sys.argv = argv
        with contextlib.suppress(OSError):
            if os.getcwd() != cwd:
                os.chdir(cwd)


def repository_root(file: Path) -> Path | None:
    """The nearest folder at or above the file's folder holding a pyproject.toml, setup.py,
    setup.cfg or .git: where the repository's own packages are importable from."""
    for folder in file.parents:
        if any((folder / marker).exists() for marker in REPOSITORY_MARKERS):
            return folder
    return None


@contextlib.contextmanager
def search_path(folders: list[str]) -> Iterator[list[str]]:
    """``folders`` first on ``sys.path`` while user code runs; afterwards ``sys.path`` is what it
    was. Yields a list that, on exit, holds the entries present at the end that were not there
    before (``folders`` and what the code added itself), to enter again when building."""
    saved = list(sys.path)
    sys.path[:0] = [f for f in folders if f not in sys.path]
    added: list[str] = []
    try:
        yield added
    finally:
        added[:] = [f for f in dict.fromkeys(sys.path) if f not in saved and isinstance(f, str)]
        sys.path[:] = saved


def _package_root(path: Path) -> tuple[Path, str] | None:
    """For a file inside a package (folders with __init__.py), the root folder and dotted name."""
    parts = [path.stem] if path.name != "__init__.py" else []
    folder = path.parent
    if not (folder / "__init__.py").exists():
        return None
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    if not all(p.isidentifier() for p in parts):
        return None
    return folder, ".".join(parts)


def import_user_file(path: str) -> tuple[types.ModuleType, list[str], list[str]]:
    """Import ``path`` as a module; returns it, the project files the import pulled in, and the
    ``sys.path`` entries to put back while its models are built (``search_path``)."""
    file = Path(path).resolve()
    before = set(sys.modules)
    _use_buffers()
    pkg = _package_root(file)
    folders = [str(pkg[0] if pkg is not None else file.parent)]
    repo = repository_root(file)
    if repo is not None:
        folders.append(str(repo))
    try:
        with search_path(folders) as added, running_as_script(file), _no_bytecode():
            module = _import_in_package(pkg[1]) if pkg is not None else _import_path(file)
    except BaseException as e:
        partial = getattr(e, "gradlint_module", None)
        if partial is not None:
            # what the file defined before the line that raised (a script loading data at import)
            e.gradlint_partial = (partial, added)
        raise
    project = {str(file)}
    for mod_name in set(sys.modules) - before:
        f = getattr(sys.modules.get(mod_name), "__file__", None)
        if f and f.endswith(".py") and not is_library_file(f):
            project.add(str(Path(f).resolve()))
    project |= referenced_project_files(module)
    return module, sorted(project), added


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    """Import without writing ``__pycache__`` into the user's repository: gradlint writes nothing
    there but its cache (a pre-commit hook would see the new files as changes made by the hook)."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


_counter = 0


def _import_path(file: Path) -> types.ModuleType:
    """A file outside any package, under its own name (a unique one when that name is taken)."""
    global _counter
    name = file.stem if file.stem.isidentifier() else re.sub(r"\W", "_", file.stem)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(file):
        _counter += 1
        name = f"_gradlint_target_{_counter}_{name}"
    spec = _file_spec(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    return _execute(name, spec)


def _import_in_package(dotted: str) -> types.ModuleType:
    """A module inside a package (its parents imported first), executed like ``_import_path`` so
    that what it defined before a failing line stays readable."""
    if dotted in sys.modules:
        return sys.modules[dotted]
    parent, _, leaf = dotted.rpartition(".")
    if parent:
        importlib.import_module(parent)
        if dotted in sys.modules:  # the parent's __init__ imported it
            return sys.modules[dotted]
    spec = importlib.util.find_spec(dotted)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {dotted}")
    module = _execute(dotted, spec)
    if parent:
        setattr(sys.modules[parent], leaf, module)
    return module


def _execute(name: str, spec: Any) -> types.ModuleType:
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(name, None)
        e.gradlint_module = module  # the partly executed module, for discovery
        raise
    return module


def referenced_project_files(module: types.ModuleType) -> set[str]:
    """User files a module uses, through the modules, classes and functions it references.

    An import diff alone misses a helper module that an earlier target already imported; the
    cache must still be invalidated when that helper changes.
    """
    seen: set[str] = set()
    files: set[str] = set()
    stack = [module]
    while stack:
        mod = stack.pop()
        if mod.__name__ in seen:
            continue
        seen.add(mod.__name__)
        f = getattr(mod, "__file__", None)
        if not f or is_library_file(f):
            continue
        files.add(str(Path(f).resolve()))
        for value in list(vars(mod).values()):
            if isinstance(value, types.ModuleType):
                stack.append(value)
            else:
                try:
                    owner = sys.modules.get(getattr(value, "__module__", None) or "")
                except Exception:  # noqa: BLE001 - exotic objects (lazy proxies) may raise
                    continue
                if isinstance(owner, types.ModuleType) and owner.__name__ not in seen:
                    stack.append(owner)
    return files
