"""Which findings the user sees: the selected codes, minus ``# noqa`` comments and
``per-file-ignores``.

A file's comments come from the standard library's tokenizer (libcst gave the same comments and
cost ~0.4 s to import in every cold run), once per file; a file that cannot be tokenized has no
suppressions (its import already failed with GL001).
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import Config
from ..rules.finding import Finding
from .records import ModelReport

# flake8's noqa: "# noqa", "# noqa: GL101", "# noqa:GL101,GL102", case-insensitive.
NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
FILE_NOQA = re.compile(r"#\s*gradlint:\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)

@dataclass
class SourceFacts:
    noqa: dict[int, frozenset[str] | None] = field(default_factory=dict)  # line -> codes (None: all)
    file_noqa: frozenset[str] | None | bool = False  # False: none; None: all codes; set: those


@lru_cache(maxsize=512)
def _scan_cached(path: str, mtime_ns: int, size: int) -> SourceFacts:
    from ..load.importer import source_bytes

    facts = SourceFacts()
    try:
        text = source_bytes(path).decode("utf-8", errors="replace")
        comments = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                    if tok.type == tokenize.COMMENT]
    except (OSError, SyntaxError, tokenize.TokenError):  # unparsable files carry no suppressions
        return facts
    for line, comment in comments:
        m = FILE_NOQA.search(comment)
        if m:
            codes = _codes(m.group("codes"))
            if codes is None:
                facts.file_noqa = None
            elif facts.file_noqa is not None:
                facts.file_noqa = (facts.file_noqa or frozenset()) | codes
            continue
        m = NOQA.search(comment)
        if m:
            codes = _codes(m.group("codes"))
            prev = facts.noqa.get(line, frozenset())
            facts.noqa[line] = None if codes is None or prev is None else prev | codes
    return facts


def _codes(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(c.upper() for c in re.split(r"[,\s]+", text.strip()) if c)


def scan(path: str) -> SourceFacts:
    try:
        st = Path(path).stat()
    except OSError:
        return SourceFacts()
    return _scan_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def is_suppressed(path: str, line: int, code: str) -> bool:
    facts = scan(path)
    if facts.file_noqa is None or (facts.file_noqa and code in facts.file_noqa):
        return True
    if line in facts.noqa:
        codes = facts.noqa[line]
        return codes is None or code in codes or any(code.startswith(c) for c in codes)
    return False


def filter_findings(findings: list[Finding], model: ModelReport, session: Any) -> list[Finding]:
    config = session.config
    out = []
    for f in findings:
        if f.code not in session.enabled:
            continue
        if f.location is not None and os.path.exists(f.location.path) and is_suppressed(f.location.path, f.location.line, f.code):
            continue
        if _per_file_ignored(f, model.path, config):
            continue
        out.append(f)
    out.sort(key=lambda f: (f.location.path if f.location else "", f.location.line if f.location else 0,
                            f.location.column if f.location else 0, f.code))
    return out


def _per_file_ignored(f: Finding, model_path: str, config: Config) -> bool:
    if not config.per_file_ignores:
        return False
    from ..rules import expand_selectors

    root = config.root or Path.cwd()
    paths = {model_path}
    if f.location is not None:
        paths.add(f.location.path)
    rels = set()
    for p in paths:
        ap = Path(p).resolve()
        try:
            rels.add(ap.relative_to(root.resolve()).as_posix())
        except ValueError:
            rels.add(ap.as_posix())
        rels.add(Path(p).as_posix())
    for pattern, codes in config.per_file_ignores.items():
        if any(fnmatch.fnmatch(r, pattern) or fnmatch.fnmatch(Path(r).name, pattern) for r in rels):
            if f.code in expand_selectors(codes):
                return True
    return False
