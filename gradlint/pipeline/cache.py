"""A results cache, like ruff's: an unchanged file reports from cache without importing torch.

One entry per target file, keyed on gradlint's version, the Python and torch versions (read from
package metadata, not by importing torch), the effective configuration and the file's content.
The entry records what else the result depends on, and is served only while all of it is
unchanged: every project file the model's import used (helper modules, a shared layers.py),
every file under the project root the user's code opened (a ``config.json``), each with its
content hash, and the environment variables the user's code read, with their values.

Entries are JSON (``serialize.py``), never pickle: ``cache-dir`` can come from the repository's
own pyproject.toml and a CI cache can be restored from another branch, so an entry is data that
is checked on load, and one of the wrong shape is ignored and recomputed. Each entry is written
as soon as its file is done, so an interrupted run keeps what it finished.

``DependencyIndex`` keeps, beside the entries, which files each analysed model file depended on
at its last analysis: ``--with-dependents`` (the pre-commit hook) also lints the model files that
import a changed helper.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import fields
from importlib import metadata
from pathlib import Path
from typing import Any

from ..config import Config
from ..load.targets import Target
from ..version import __version__
from .records import FileResult
from .serialize import ShapeError, from_plain, to_plain

CACHE_FORMAT = 3  # 1 was pickle; 3: reports carry frozen layers, act_rms/grad_rms, the collapse and information-flow readouts
# Config fields that do not change results (or are part of the key some other way).
_NOT_IN_KEY = {"root", "source", "cache", "cache_dir", "timeout", "memory_limit", "models", "exclude", "chart",
               "plot", "tensorboard"}
INDEX_NAME = "dependencies.json"


def _sha(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
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

    def _file(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, target: Target) -> FileResult | None:
        """The stored result, or None when there is none, it is stale, or it is not a valid entry."""
        key = self._key(target)
        if key is None:
            return None
        try:
            with open(self._file(key), "rb") as fh:
                entry = read_entry(fh.read())
        except (OSError, ShapeError):
            return None
        if any(_sha(path) != digest for path, digest in entry["files"].items()):
            return None
        if any(os.environ.get(name) != value for name, value in entry["environment"].items()):
            return None
        result = entry["result"]
        for r in result.reports:
            r.cached = True
        return result

    def put(self, target: Target, result: FileResult) -> None:
        key = self._key(target)
        if key is None:
            return
        files = {p: _sha(p) for p in sorted({*result.project_files, *result.opened_files})}
        try:
            text = json.dumps({"format": CACHE_FORMAT, "gradlint": __version__, "target": target.spec,
                               "files": files, "environment": result.environment,
                               "result": to_plain(result, FileResult)}, separators=(",", ":"))
        except (ShapeError, TypeError, ValueError):
            return  # a result that cannot be stored is recomputed next time
        if _write_atomic(self._file(key), text, self.dir):
            DependencyIndex(self.dir).record(str(Path(target.path).resolve()), list(files))


def read_entry(data: bytes) -> dict[str, Any]:
    """A cache entry, checked: ShapeError unless it is one this version wrote."""
    try:
        entry = json.loads(data)
    except (ValueError, RecursionError):
        raise ShapeError("not a JSON cache entry") from None
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
        raise ShapeError("not a cache entry of this format")
    files = from_plain(entry.get("files"), dict[str, str | None], "$.files")
    environment = from_plain(entry.get("environment"), dict[str, str | None], "$.environment")
    result = from_plain(entry.get("result"), FileResult, "$.result")
    return {"files": files, "environment": environment, "result": result}


def _write_atomic(path: Path, text: str, cache_dir: Path) -> bool:
    """Write ``text`` to ``path`` whole or not at all (parallel runs never read half an entry)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _ensure_gitignore(cache_dir)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return True
    except OSError:
        return False  # a read-only checkout just runs uncached


def _ensure_gitignore(directory: Path) -> None:
    gi = directory / ".gitignore"
    if not gi.exists():
        gi.write_text("# created by gradlint\n*\n")


class DependencyIndex:
    """Model file -> the files its last analysis depended on (absolute paths), in one JSON file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / INDEX_NAME
        self.dir = directory

    def load(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_bytes())
            return from_plain(data, dict[str, list[str]])
        except (OSError, ValueError, RecursionError):  # ShapeError is a ValueError
            return {}

    def record(self, model_file: str, depends_on: list[str]) -> None:
        index = self.load()
        deps = sorted(p for p in depends_on if p != model_file)
        if index.get(model_file) == deps:
            return
        index[model_file] = deps
        _write_atomic(self.path, json.dumps(index, sort_keys=True), self.dir)

    def dependents(self, paths: set[str]) -> list[str]:
        """Model files that depended on one of ``paths``, sorted."""
        return sorted(m for m, deps in self.load().items() if paths.intersection(deps))

    def is_dependency(self, path: str) -> bool:
        return any(path in deps for deps in self.load().values())
