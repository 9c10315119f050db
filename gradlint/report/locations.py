"""Where findings live, as CI tools and editors want it: paths relative to the repository root and
columns in the units they count.

A finding's ``Location.path`` is relative to the working directory (or absolute outside it) and its
column is 1-based in UTF-8 bytes, as Python's ``co_positions()`` reports it. GitHub and SARIF
resolve paths against the repository root; SARIF and LSP count columns in UTF-16 code units.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The git work tree containing ``start`` (default: the working directory), else ``start``.

    Walks up to a ``.git`` entry (a folder, or a file in worktrees and submodules) instead of
    calling git: CI images do not always have it, and it costs a process per run.
    """
    here = Path(os.path.realpath(start if start is not None else os.getcwd()))
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return here


def relative_to_root(path: str, root: Path) -> str | None:
    """``path`` (relative to the working directory, or absolute) relative to ``root``, with ``/``
    separators; None when it lies outside ``root``."""
    real = Path(os.path.realpath(path))
    try:
        rel = real.relative_to(root)
    except ValueError:
        return None
    return rel.as_posix()


def char_index(line_text: str, byte_column: int) -> int:
    """The 0-based code-point index of a 1-based UTF-8 byte column in ``line_text``."""
    prefix = line_text.encode("utf-8")[: max(byte_column - 1, 0)]
    return len(prefix.decode("utf-8", errors="ignore"))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class Utf16Columns:
    """Converts byte columns to 1-based UTF-16 columns, reading each file once per report."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[str, ...] | None] = {}

    def _lines(self, path: str) -> tuple[str, ...] | None:
        if path not in self._files:
            try:
                self._files[path] = tuple(Path(path).read_text(encoding="utf-8").splitlines())
            except (OSError, UnicodeDecodeError):
                self._files[path] = None
        return self._files[path]

    def column(self, path: str, line: int, byte_column: int) -> int:
        """ASCII lines and unreadable files keep the column as it is."""
        lines = self._lines(os.path.realpath(path))
        if lines is None or not 1 <= line <= len(lines) or lines[line - 1].isascii():
            return byte_column
        text = lines[line - 1]
        return utf16_units(text[: char_index(text, byte_column)]) + 1
