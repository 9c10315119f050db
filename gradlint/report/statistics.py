"""``--statistics``: how often each code fired, instead of the findings themselves (as ``ruff
check --statistics``): the overview to decide what to fix first or what to ignore."""

from __future__ import annotations

import json
from collections import Counter
from typing import IO, Any

from ..pipeline.records import Report
from .text import summary_line


def statistics(report: Report, show_notes: bool = False) -> list[dict[str, Any]]:
    """[{code, name, count}] of the problems (and with ``show_notes`` the notes), the most frequent
    first, then by code."""
    shown = report.findings if show_notes else report.problems
    counts = Counter(f.code for f in shown)
    names = {f.code: f.name for f in shown}
    return [{"code": c, "name": names[c], "count": n} for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def render_statistics(report: Report, out: IO[str], as_json: bool = False, show_notes: bool = False) -> None:
    rows = statistics(report, show_notes)
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    width = max((len(str(r["count"])) for r in rows), default=1)
    for r in rows:
        out.write(f"{r['count']:>{width}}\t{r['code']}\t{r['name']}\n")
    out.write(summary_line(report, notes_shown=show_notes) + "\n")
