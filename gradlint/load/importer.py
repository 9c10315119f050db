"""Importing the user's file the way pytest imports a test file: its folder (or its package's
root) on ``sys.path``, ``if __name__ == "__main__":`` blocks not run, and a list of the project
files the import pulled in (for the cache)."""

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

from ..ir.source import is_library_file


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


_counter = 0


def import_user_file(path: str) -> tuple[types.ModuleType, list[str]]:
    """Import ``path`` as a module; returns it and the project files the import pulled in."""
    global _counter
    file = Path(path).resolve()
    before = set(sys.modules)
    _use_buffers()
    pkg = _package_root(file)
    if pkg is not None:
        root, dotted = pkg
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        module = importlib.import_module(dotted)
    else:
        if str(file.parent) not in sys.path:
            sys.path.insert(0, str(file.parent))
        name = file.stem if file.stem.isidentifier() else re.sub(r"\W", "_", file.stem)
        existing = sys.modules.get(name)
        if existing is not None and getattr(existing, "__file__", None) != str(file):
            _counter += 1
            name = f"_gradlint_target_{_counter}_{name}"
        spec = _file_spec(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    project = {str(file)}
    for mod_name in set(sys.modules) - before:
        f = getattr(sys.modules.get(mod_name), "__file__", None)
        if f and f.endswith(".py") and not is_library_file(f):
            project.add(str(Path(f).resolve()))
    project |= referenced_project_files(module)
    return module, sorted(project)


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
