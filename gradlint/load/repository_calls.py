"""How the repository calls a model class: ``train.py:57: Generator(h)``, for GL002's message. The
file itself first, then its folder, then the rest of the repository, read with libcst (nothing
imported or run)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..ir.source import display_path
from .targets import SKIP_DIRS


def call_examples(path: str, name: str, module_name: str | None = None, limit: int = 3,
                  max_files: int = 300) -> list[str]:
    """How the repository calls the class ``name`` defined in ``path``: ``train.py:57: Generator(h)``,
    the file itself first, then its folder, then the rest of the repository (at most ``max_files``
    files read). Another file counts only when it imports the defining module (``module_name``,
    else the file's stem), so ``torch.Generator()`` is not taken for the user's ``Generator``."""
    from .importer import repository_root
    from .source_scan import find_calls

    file = Path(path).resolve()
    stem = (module_name or file.stem).split(".")[-1]
    imports = re.compile(rf"^\s*(from|import)\s+[\w.]*\b{re.escape(stem)}\b", re.MULTILINE)
    root = repository_root(file) or file.parent
    files = [file] + sorted(p for p in file.parent.glob("*.py") if p != file)
    seen = set(files)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            p = Path(dirpath, f)
            if f.endswith(".py") and p not in seen:
                files.append(p)
                seen.add(p)
        if len(files) >= max_files:
            break
    found: list[str] = []
    for p in files[:max_files]:
        if p != file:
            try:
                if not imports.search(p.read_text(encoding="utf-8", errors="replace")):
                    continue
            except OSError:
                continue
        for call in find_calls(p, name):
            head = call.callee.rpartition(".")[0]
            if head and head.split(".")[-1] != stem:
                continue  # x.Generator(...) of some other module
            if call.text.endswith("()"):
                continue  # the call without arguments: discovery tried it
            if p == file and call.literal:
                continue  # discovery already tried it
            found.append(f"{display_path(str(p))}:{call.line}: {call.text}")
            if len(found) >= limit:
                return found
    return found
