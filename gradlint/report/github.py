"""GitHub Actions workflow commands: one ``::error file=F,line=L,col=C,title=T::message`` per finding,
which the runner turns into an annotation on the file in the pull request.

Escaping follows @actions/core (``toolkit/packages/core/src/command.ts``): ``%``, CR and LF in the
message; additionally ``:`` and ``,`` in property values, since those delimit the properties.
"""

from __future__ import annotations

from typing import IO

from ..pipeline.records import Report
from ..rules.finding import Finding
from .locations import relative_to_root, repo_root
from .text import summary_line

# gradlint severity -> workflow command (GitHub has error, warning and notice).
COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding, path: str, line: int, column: int) -> str:
    props = {"file": path, "line": str(line), "col": str(column), "title": f"{f.code} {f.name}"}
    head = ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
    # The fix goes on a second line of the annotation: that is where a reviewer reads it.
    message = f"{f.message}\nFix: {f.fix.strip()}" if f.fix.strip() else f.message
    return f"::{COMMANDS.get(f.severity, 'warning')} {head}::{escape_data(message)}"


def render_github(report: Report, out: IO[str], show_notes: bool = False, **_options) -> None:
    """Problems as error/warning annotations; notes as notices only with ``show_notes``."""
    root = repo_root()
    for m in report.models:
        for f in m.findings:
            if not (f.is_problem or show_notes):
                continue
            loc = f.location
            path, line, column = (loc.path, loc.line, loc.column) if loc else (m.path, 1, 1)
            # Annotations only attach to files named relative to the repository root.
            out.write(annotation(f, relative_to_root(path, root) or path, max(line, 1), max(column, 1)) + "\n")
    # Plain lines are shown as log text; the summary tells the reader what the annotations add up to.
    out.write(summary_line(report, notes_shown=show_notes) + "\n")
