"""What the user's code read besides its modules: files it opened and environment variables.

A model that reads ``config.json`` or ``os.environ["DEPTH"]`` gives another result when those
change, so the results cache keys on them too. Files come from the interpreter's audit hook on
``open`` (``builtins.open``, ``io.open``, ``os.open``, ``pathlib``), kept when they lie under the
project root and outside library code; variables from reads of ``os.environ`` (``[]``, ``get``,
``in``, ``os.getenv``) whose caller is the user's code, not torch's or gradlint's.

An audit hook cannot be removed, so one hook is installed per process and does nothing unless a
``DependencyRecorder`` is active.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

from ..ir.source import is_library_file

_active: list["DependencyRecorder"] = []
_hook_installed = False
_in_hook = False
# Files whose reads never decide a result: compiled bytecode (rewritten from the sources, which
# are dependencies already) and gradlint's own cache.
_IGNORED_SUFFIXES = (".pyc", ".pyo")
# Where os.getenv and the Mapping methods live (frozen modules in CPython 3.11+).
_ENV_HELPERS = {os.__file__, getattr(sys.modules.get("_collections_abc"), "__file__", ""),
                "<frozen os>", "<frozen _collections_abc>"}


class DependencyRecorder:
    """Records, while active, the files under ``root`` that are opened for reading and the
    environment variables user code reads. ``opened``: sorted absolute paths; ``environment``:
    name -> value (None when unset)."""

    def __init__(self, root: str | Path, ignore: list[str | Path] = ()) -> None:
        self.root = os.path.realpath(root)
        self.ignore = [os.path.realpath(p) for p in ignore]
        self._opened: set[str] = set()
        self.environment: dict[str, str | None] = {}
        self._environ_class: type | None = None

    @property
    def opened(self) -> list[str]:
        return sorted(self._opened)

    def __enter__(self) -> "DependencyRecorder":
        _install_hook()
        _active.append(self)
        self._environ_class = type(os.environ)
        os.environ.__class__ = _recording_environ(self._environ_class)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self in _active:
            _active.remove(self)
        if self._environ_class is not None:
            os.environ.__class__ = self._environ_class

    # -- called by the hook and the environ class ----------------------------------------------
    def saw_open(self, path: Any, mode: Any, flags: Any) -> None:
        if not _reads(mode, flags) or isinstance(path, int):
            return
        try:
            name = os.fsdecode(path)
        except TypeError:
            return
        if name.endswith(_IGNORED_SUFFIXES):
            return
        real = os.path.realpath(os.path.abspath(name))
        if not (real == self.root or real.startswith(self.root + os.sep)):
            return
        if any(real == p or real.startswith(p + os.sep) for p in self.ignore):
            return
        if is_library_file(real) or os.path.isdir(real):
            return
        self._opened.add(real)

    def saw_environ(self, key: Any, value: str | None, caller: types.FrameType | None) -> None:
        if isinstance(key, str) and _called_from_user_code(caller):
            self.environment.setdefault(key, value)


def _reads(mode: Any, flags: Any) -> bool:
    """Opened only for reading: ``open(path)``, ``open(path, "rb")``, ``os.open(path, O_RDONLY)``."""
    if isinstance(mode, str):
        return not any(c in mode for c in "wax+")
    if isinstance(flags, int):
        return flags & (os.O_WRONLY | os.O_RDWR) == 0
    return True


def _called_from_user_code(frame: types.FrameType | None) -> bool:
    """Whether the first frame outside ``os`` and the mapping helpers is the user's code."""
    while frame is not None and frame.f_code.co_filename in _ENV_HELPERS:
        frame = frame.f_back
    return frame is not None and not is_library_file(frame.f_code.co_filename)


def _hook(event: str, args: tuple) -> None:
    global _in_hook
    if event != "open" or not _active or _in_hook:
        return
    _in_hook = True
    try:
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        for recorder in _active:
            recorder.saw_open(path, mode, flags)
    except Exception:  # noqa: BLE001 - an exception here would fail the user's open()
        pass
    finally:
        _in_hook = False


def _install_hook() -> None:
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_hook)
        _hook_installed = True


_recording_classes: dict[type, type] = {}


def _recording_environ(base: type) -> type:
    """A subclass of ``os.environ``'s class whose reads are reported (``get``, ``in`` and
    ``os.getenv`` all go through ``__getitem__``)."""
    if base in _recording_classes.values():
        return base
    if base not in _recording_classes:

        class RecordingEnviron(base):  # type: ignore[misc, valid-type]
            def __getitem__(self, key):  # noqa: ANN001
                try:
                    value = super().__getitem__(key)
                except KeyError:
                    _report(key, None, sys._getframe(1))
                    raise
                _report(key, value, sys._getframe(1))
                return value

        _recording_classes[base] = RecordingEnviron
    return _recording_classes[base]


def _report(key: Any, value: str | None, caller: types.FrameType) -> None:
    for recorder in _active:
        try:
            recorder.saw_environ(key, value, caller)
        except Exception:  # noqa: BLE001 - never break the user's read
            pass
