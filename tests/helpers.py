"""In-process analysis for tests: faster than a subprocess per case (torch imports once)."""

from __future__ import annotations

from pathlib import Path

from gradlint.config import Config
from gradlint.pipeline import run
from gradlint.rules import select_rules


def analyze_path(path: Path | str, select: list[str] | None = None, config: Config | None = None, **overrides):
    config = config or Config()
    for k, v in overrides.items():
        setattr(config, k, v)
    enabled = select_rules(select if select is not None else config.select, config.extend_select, config.ignore)
    report, session = run([str(path)], config, enabled)
    assert not session.internal_errors, session.internal_errors
    return report


def codes(report) -> list[str]:
    return [f.code for f in report.findings]
