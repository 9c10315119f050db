"""Every rule's documented examples are tests (Fixit's VALID/INVALID): INVALID examples must
produce the rule's finding at the documented line, VALID ones must not produce it."""

from __future__ import annotations

import pytest
from helpers import analyze_path

from gradlint.rules import all_rules

CASES = []
for code, rule in all_rules().items():
    for i, ex in enumerate(rule.INVALID):
        CASES.append(pytest.param(code, ex, True, id=f"{code}-invalid-{i}"))
    for i, ex in enumerate(rule.VALID):
        CASES.append(pytest.param(code, ex, False, id=f"{code}-valid-{i}"))


@pytest.mark.parametrize("code, example, should_fire", CASES)
def test_rule_example(code, example, should_fire, tmp_path):
    path = tmp_path / f"example_{code.lower()}.py"
    path.write_text(example.source, encoding="utf-8")
    target = f"{path}::{example.target}" if example.target else str(path)
    report = analyze_path(target, select=[code], verify=example.verify)
    hits = [f for f in report.findings if f.code == code]
    if should_fire:
        assert hits, f"{code} did not fire on its INVALID example"
        if example.line is not None:
            assert any(f.location and f.location.line == example.line and f.location.path.endswith(path.name)
                       for f in hits), [(str(f.location), f.message) for f in hits]
        severity = example.severity or all_rules()[code].severity
        assert any(f.severity == severity for f in hits), [(f.severity, f.message) for f in hits]
    else:
        assert not hits, [f"{f.location}: {f.message}" for f in hits]


def test_every_rule_has_examples_and_docs():
    for code, rule in all_rules().items():
        assert rule.INVALID, f"{code} has no INVALID example"
        assert rule.VALID, f"{code} has no VALID example"
        for attr in ("summary", "what", "why", "fix"):
            assert getattr(rule, attr).strip(), f"{code} has no {attr}"
        assert rule.references, f"{code} has no references"
        assert rule.name == rule.name.lower() and " " not in rule.name and "_" not in rule.name
        assert rule.severity in ("error", "warning", "info")
