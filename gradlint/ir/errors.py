"""Errors that become GL001 findings: a stage, a one-line reason and the user's line."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from ..config import format_size
from .source import Location

STAGES = ("import", "build", "capture", "estimate", "verify")

DEBUG = False  # --debug: print the traceback of every failure to stderr
MEMORY_LIMIT: int | None = None  # bytes: the worker's address-space cap, named when memory runs out

# How running out of memory reads: Python's MemoryError, torch's allocators, C++'s bad_alloc.
_OUT_OF_MEMORY = ("not enough memory", "can't allocate memory", "cannot allocate memory", "bad_alloc",
                  "out of memory")


@dataclass
class StageError(Exception):
    stage: str
    message: str
    location: Location | None = None
    hint: str | None = None
    missing_module: str | None = None  # it came from importing a module that is not installed

    def __str__(self) -> str:
        return f"{self.stage}: {self.message}"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``TypeError: forward() missing 1 required positional argument`` on one line."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    msg = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def user_frame_of(exc: BaseException) -> Location | None:
    """The innermost traceback frame in the user's code, i.e. the line their exception came from."""
    from .source import display_path, is_library_file

    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return Location(display_path(exc.filename), exc.lineno, max(exc.offset or 1, 1))
    found = None
    for frame_summary in traceback.extract_tb(exc.__traceback__):
        if not is_library_file(frame_summary.filename):
            col = (getattr(frame_summary, "colno", None) or 0) + 1
            found = Location(display_path(frame_summary.filename), frame_summary.lineno or 1, col)
    return found


def stage_error(stage: str, exc: BaseException, hint: str | None = None, fallback: Location | None = None) -> StageError:
    if isinstance(exc, StageError):
        return exc
    if DEBUG:
        import sys

        print(f"--- gradlint --debug: {stage} failed ---", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
    message, hint = one_line(exc), hint
    if MEMORY_LIMIT and is_out_of_memory(exc):
        message = f"over the {format_size(MEMORY_LIMIT)} memory cap: {message}"
        hint = hint or "raise memory-limit (or --memory-limit), or build a smaller configuration"
    return StageError(stage, message, user_frame_of(exc) or fallback, hint, missing_module(exc))


def missing_module(exc: BaseException) -> str | None:
    """The module whose absence caused ``exc`` (a ModuleNotFoundError, or an error raised while
    handling one: ``raise ImportError("pip install einops") from e``), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError):
            return exc.name or "?"
        exc = exc.__cause__ or exc.__context__
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(s in text for s in _OUT_OF_MEMORY)

