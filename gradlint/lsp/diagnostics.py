"""Findings (the JSON contract: 1-based line, 1-based UTF-8 byte column) -> LSP diagnostics
(0-based line, 0-based column in the client's position encoding), and the hover text.

A finding located in another file (a layer built in an imported module) is shown on the line that
defines the model, with the real place as related information: the document the user opened is
the one whose diagnostics we own and clear.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lsprotocol import types

from ..report.locations import char_index

SOURCE = "gradlint"
SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}

Units = Callable[[str], int]  # code units of a string in the negotiated position encoding


@dataclass
class Shown:
    """A published diagnostic and what its hover says."""

    diagnostic: types.Diagnostic
    hover: str


def _doc_url(code: str) -> str | None:
    from ..rules import get_rule

    rule = get_rule(code)
    return rule.doc_url() if rule is not None else None


def line_range(lines: Sequence[str], line: int, byte_column: int, units: Units) -> types.Range:
    """From the finding's column to the end of its line's code (what a squiggle should cover)."""
    line = min(max(line, 1), max(len(lines), 1)) - 1
    text = lines[line] if line < len(lines) else ""
    start = char_index(text, byte_column)
    end = len(text.rstrip())
    if end <= start:
        end = len(text)
    return types.Range(start=types.Position(line, units(text[:start])), end=types.Position(line, units(text[:end])))


def _definition_line(lines: Sequence[str], target: str) -> int:
    """1-based line of ``class Name``/``def Name`` for a target ``path::Name(args)``, else 1."""
    name = target.rpartition("::")[2].split("(")[0].strip()
    if name:
        pattern = re.compile(rf"^\s*(?:class|def)\s+{re.escape(name)}\b")
        for i, text in enumerate(lines):
            if pattern.match(text):
                return i + 1
    return 1


def hover_text(f: dict[str, Any], url: str | None) -> str:
    parts = [f"**{f['code']}** `{f.get('name', '')}`: {f.get('message', '')}"]
    if f.get("fix"):
        parts.append(f"**Fix:** {f['fix']}")
    if url:
        parts.append(f"[{f['code']} documentation]({url})")
    return "\n\n".join(parts)


def to_diagnostics(findings: list[dict[str, Any]], path: str, lines: Sequence[str], units: Units) -> list[Shown]:
    """Diagnostics for the document at ``path`` (absolute), whose text is ``lines``."""
    here = os.path.realpath(path)
    out: list[Shown] = []
    seen: set[tuple] = set()
    for f in findings:
        loc = f.get("location") or {}
        related = None
        message = f.get("message", "")
        if loc.get("path") and os.path.realpath(loc["path"]) == here:
            line, column = int(loc.get("line", 1)), int(loc.get("column", 1))
        else:
            line, column = _definition_line(lines, f.get("target", "")), 1
            if loc.get("path"):
                where = f"{_short(loc['path'], path)}:{loc.get('line', 1)}:{loc.get('column', 1)}"
                message = f"{message} (at {where})"
                pos = types.Position(max(int(loc.get("line", 1)) - 1, 0), max(int(loc.get("column", 1)) - 1, 0))
                related = [types.DiagnosticRelatedInformation(
                    location=types.Location(uri=Path(loc["path"]).as_uri(), range=types.Range(start=pos, end=pos)),
                    message=f"{f['code']} is located here")]
        key = (f["code"], line, column, message)
        if key in seen:  # two models of one file can share a layer definition
            continue
        seen.add(key)
        url = _doc_url(f["code"])
        diag = types.Diagnostic(
            range=line_range(lines, line, column, units),
            message=message,
            severity=SEVERITIES.get(f.get("severity", ""), types.DiagnosticSeverity.Warning),
            code=f["code"],
            code_description=types.CodeDescription(href=url) if url else None,
            source=SOURCE,
            related_information=related,
            data={"name": f.get("name"), "fix": f.get("fix", ""), "target": f.get("target", ""),
                  "fixes": f.get("fixes") or []},
        )
        out.append(Shown(diag, hover_text(f, url)))
    return out


def failure(lines: Sequence[str], error: str, units: Units) -> Shown:
    """A run that produced no report (timeout, crash) shows as one warning on the first line."""
    message = f"gradlint could not analyse this file: {error}"
    diag = types.Diagnostic(range=line_range(lines, 1, 1, units), message=message,
                            severity=types.DiagnosticSeverity.Warning, source=SOURCE)
    return Shown(diag, message)


def _short(other: str, path: str) -> str:
    try:
        return os.path.relpath(other, os.path.dirname(path))
    except ValueError:  # pragma: no cover - another drive on Windows
        return other


def contains(r: types.Range, pos: types.Position) -> bool:
    return (r.start.line, r.start.character) <= (pos.line, pos.character) <= (r.end.line, r.end.character)
