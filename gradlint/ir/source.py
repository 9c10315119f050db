"""Where things live in the user's source: ``Location``, and which file and frame is the user's.

Findings must point at the line to change, never inside torch or gradlint: these helpers tell
library files (torch, gradlint, the standard library, installed packages) from the user's
project, walk a Python stack to the user's frame, and print paths relative to the working
directory. No torch import at module level.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import types
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Location:
    """Where something lives in the user's source: 1-based line, 1-based column."""

    path: str
    line: int
    column: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "column": self.column}

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"



GRADLINT_DIR = str(Path(__file__).resolve().parents[1])  # the gradlint package


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = {GRADLINT_DIR}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    try:  # torch installed somewhere unusual (an editable build, say) is still library code
        import torch

        roots.add(os.path.realpath(os.path.dirname(torch.__file__)))
    except ImportError:  # pragma: no cover - capture never runs without torch
        pass
    return tuple(sorted(roots))


@lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    """True for torch, gradlint, the standard library and installed packages."""
    if not filename or filename.startswith("<"):
        return True
    real = os.path.realpath(filename)
    return any(real == root or real.startswith(root + os.sep) for root in _library_roots())


def display_path(filename: str) -> str:
    """A path relative to the working directory when it lies below it, else absolute."""
    return _display_path(filename, os.getcwd())


@lru_cache(maxsize=4096)
def _display_path(filename: str, cwd: str) -> str:
    real = os.path.realpath(filename)
    try:
        rel = os.path.relpath(real, cwd)
    except ValueError:  # another drive on Windows
        return real
    return real if rel.startswith("..") else rel


@lru_cache(maxsize=1024)
def _positions(code: types.CodeType) -> list:
    return list(code.co_positions())


def frame_location(frame: types.FrameType) -> Location:
    """The location of the instruction a frame is executing, with its column (Python 3.11+)."""
    code = frame.f_code
    line, column = frame.f_lineno, 1
    try:
        pos = _positions(code)[frame.f_lasti // 2]
        if pos[0] is not None:
            line = pos[0]
        if pos[2] is not None:
            column = pos[2] + 1
    except (AttributeError, IndexError):  # pragma: no cover - Python < 3.11
        pass
    return Location(display_path(code.co_filename), line, column)


@lru_cache(maxsize=4096)
def _in_gradlint(filename: str) -> bool:
    real = os.path.realpath(filename)
    return real == GRADLINT_DIR or real.startswith(GRADLINT_DIR + os.sep)


def user_location(frame: types.FrameType | None, skip: Callable[[types.FrameType], bool] | None = None) -> Location | None:
    """The innermost frame outside library code (and not matching ``skip``).

    The walk ends where it re-enters gradlint: frames further out belong to whoever called
    gradlint (a test, an editor plugin, a script using the pipeline), not to the model, so a
    call made entirely inside library code (a timm block's forward) has no user location.
    """
    left_gradlint = False
    while frame is not None:
        filename = frame.f_code.co_filename
        if _in_gradlint(filename):
            if left_gradlint:
                return None
        else:
            left_gradlint = True
        if not is_library_file(filename) and not (skip and skip(frame)):
            return frame_location(frame)
        frame = frame.f_back
    return None


def outermost_nonlibrary_or_first(frame: types.FrameType | None) -> Location | None:
    """Fallback when no user frame exists (a model built entirely inside a library)."""
    first = None
    while frame is not None:
        if first is None and not frame.f_code.co_filename.startswith(GRADLINT_DIR):
            first = frame_location(frame)
        frame = frame.f_back
    return first
