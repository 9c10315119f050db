"""SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

One run; the tool driver lists every rule (not only the enabled ones, so an alert's rule is always
described); results point at repository-relative URIs under ``%SRCROOT%``, which code scanning
resolves against the checkout. GitHub shows ``shortDescription``/``fullDescription`` on top of an
alert and renders ``help.markdown`` below it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from ..pipeline.records import Report
from ..rules.finding import Finding
from .locations import Utf16Columns, relative_to_root, repo_root

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"

# gradlint severity -> SARIF level (SARIF has error, warning, note, none).
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _text(s: str) -> str:
    return textwrap.dedent(s).strip()


def rule_descriptor(rule: Any) -> dict[str, Any]:
    what, why, fix = _text(rule.what), _text(rule.why), _text(rule.fix)
    help_text = "\n\n".join(p for p in (what, f"Why is this bad? {why}" if why else "", f"How to fix: {fix}" if fix else "",
                                        f"Documentation: {rule.doc_url()}") if p)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary or rule.name},
        "fullDescription": {"text": what or rule.summary or rule.name},
        "help": {"text": help_text, "markdown": rule.doc_markdown()},
        "helpUri": rule.doc_url(),
        "defaultConfiguration": {"level": LEVELS.get(rule.severity, "warning"), "enabled": bool(rule.default_enabled)},
        "properties": {"tags": ["pytorch", "gradients", rule.name]},
    }


def _artifact(path: str, root: Path) -> dict[str, str]:
    rel = relative_to_root(path, root)
    if rel is None:  # outside the repository: an absolute file URI, which code scanning skips
        return {"uri": Path(path).resolve().as_uri()}
    return {"uri": quote(rel), "uriBaseId": SRCROOT}


def result(f: Finding, rule_index: dict[str, int], fallback_path: str, target: str, root: Path,
           columns: Utf16Columns) -> dict[str, Any]:
    loc = f.location
    path, line, column = (loc.path, loc.line, loc.column) if loc else (fallback_path, 1, 1)
    line = max(line, 1)
    out: dict[str, Any] = {
        "ruleId": f.code,
        "level": LEVELS.get(f.severity, "warning"),
        "message": {"text": f.message},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": _artifact(path, root),
                "region": {"startLine": line, "startColumn": max(columns.column(path, line, column), 1)},
            },
        }],
        "properties": {"name": f.name, "fix": f.fix.strip(), "target": target},
    }
    if f.fixes:  # the advisor's ranked fixes (SARIF's own ``fixes`` needs the edits' text: --diff has it)
        out["properties"]["fixes"] = [{k: v for k, v in fx.to_json().items() if k != "edit"} for fx in f.fixes]
    if f.code in rule_index:
        out["ruleIndex"] = rule_index[f.code]
    return out


def sarif_log(report: Report, root: Path | None = None) -> dict[str, Any]:
    from ..rules import all_rules
    from ..rules.base import HOMEPAGE
    from ..version import __version__

    root = root or repo_root()
    rules = list(all_rules().values())
    rule_index = {r.code: i for i, r in enumerate(rules)}
    columns = Utf16Columns()
    results = [result(f, rule_index, m.path, m.target, root, columns) for m in report.models for f in m.findings]
    notifications = [{"level": "warning", "message": {"text": msg}} for msg in report.messages]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gradlint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": HOMEPAGE,
                "rules": [rule_descriptor(r) for r in rules],
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri().rstrip("/") + "/"}},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "columnKind": "utf16CodeUnits",
            "results": results,
        }],
    }


def render_sarif(report: Report, out: IO[str], **_options) -> None:
    json.dump(sarif_log(report), out, indent=2)
    out.write("\n")
