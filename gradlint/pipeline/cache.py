"""A results cache, like ruff's: an unchanged file reports from cache without importing torch.

One entry per target file, keyed on gradlint's version, the Python and torch versions (read from
package metadata, not by importing torch), the effective configuration and the file's content.
The entry also records every project file the model's import used (helper modules, a shared
layers.py) with its content hash: editing any of them invalidates the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path

from ..config import Config
from ..load.targets import Target
from ..version import __version__

CACHE_FORMAT = 2  # 2: reports carry frozen layers, act_rms/grad_rms, the collapse and information-flow readouts
# Config fields that do not change results (or are part of the key some other way).
_NOT_IN_KEY = {"root", "source", "cache", "cache_dir", "timeout", "models", "exclude", "chart", "plot", "tensorboard"}


@dataclass
class FileResult:
    """What analysing one target file produced."""

    reports: list = field(default_factory=list)  # ModelReport
    messages: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    project_files: list[str] = field(default_factory=list)
    # False when a model failed on a module that is not installed: installing it must be seen at
    # once, so such a result is never stored
    cacheable: bool = True


def _sha(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _own_source_stamp() -> str:
    """gradlint's own files (size and mtime): a development checkout never serves stale results."""
    here = Path(__file__).resolve().parent.parent  # the whole gradlint package, not only pipeline/
    parts = []
    for p in sorted(here.rglob("*.py")):
        st = p.stat()
        parts.append(f"{p.relative_to(here)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def config_fingerprint(config: Config, enabled: set[str]) -> str:
    data = {f.name: getattr(config, f.name) for f in fields(Config) if f.name not in _NOT_IN_KEY}
    data["enabled"] = sorted(enabled)
    data["versions"] = [__version__, CACHE_FORMAT, sys.version, _version("torch"), _version("transformers"),
                        _own_source_stamp()]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class Cache:
    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.dir = directory
        self.fingerprint = fingerprint

    def _key(self, target: Target) -> str | None:
        content = _sha(target.path)
        if content is None:
            return None
        raw = "\0".join([self.fingerprint, target.spec, str(Path(target.path).resolve()), content])
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, target: Target) -> FileResult | None:
        key = self._key(target)
        if key is None:
            return None
        try:
            with open(self.dir / key[:2] / key, "rb") as fh:
                entry = pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            return None
        for path, digest in entry["deps"].items():
            if _sha(path) != digest:
                return None
        result = entry["result"]
        for r in result.reports:
            r.cached = True
        return result

    def put(self, target: Target, result: FileResult) -> None:
        key = self._key(target)
        if key is None:
            return
        deps = {p: _sha(p) for p in result.project_files}
        entry = {"format": CACHE_FORMAT, "deps": deps, "result": _portable(result)}
        folder = self.dir / key[:2]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _ensure_gitignore(self.dir)
            fd, tmp = tempfile.mkstemp(dir=folder)
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(entry, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / key)  # atomic: parallel runs never read half an entry
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            pass  # a read-only checkout just runs uncached


def _portable(result: FileResult) -> FileResult:
    """Drop what only an in-process caller needs (the captured graph)."""
    reports = [pickle.loads(pickle.dumps(replace(r, graph=None))) for r in result.reports]
    return FileResult(reports, list(result.messages), list(result.internal_errors), list(result.project_files),
                      result.cacheable)


def _ensure_gitignore(directory: Path) -> None:
    gi = directory / ".gitignore"
    if not gi.exists():
        gi.write_text("# created by gradlint\n*\n")
