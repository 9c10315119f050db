"""A finding: one rule's verdict on one model, at the user's line, and the fixes the advisor
predicted for it (``gradlint/advise``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..ir.source import Location

SEVERITIES = ("error", "warning", "info")
# Problems set exit code 1 and are counted; ``info`` findings are notes: shown, never counted.
PROBLEM_SEVERITIES = frozenset({"error", "warning"})

FIX_KINDS = ("init", "activation", "normalization", "residual", "gate", "other")
APPLICABILITY = ("safe", "unsafe", "manual")  # safe: initial weights only; unsafe: the architecture


@dataclass
class Fix:
    """One candidate change and what the estimate predicts it does (JSON ``findings[].fixes``).

    ``edit`` is the codemod's plan (plain JSON: which codemod, on which file, class and sites);
    ``gradlint/fix`` turns it into a source edit for ``--fix``, ``--diff`` and the editor's quick
    fix. ``manual`` fixes carry no edit, only ``detail``: what to change by hand.
    """

    title: str
    kind: str
    predicted_attenuation: float | None
    predicted_verdict: str | None
    applicability: str
    applied: bool = False
    detail: str = ""  # what exactly changes, or the manual instructions
    edit: dict[str, Any] | None = None
    size: int = 0  # how large the change is (ranking: smaller first among equally good fixes)
    # per weight layer, the predicted grad_ratio after the change (the "Redesign" chart); not in JSON
    ratios: list[float | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        att = self.predicted_attenuation
        if att is not None and not math.isfinite(att):
            att = 1e308 if att > 0 else None
        return {
            "title": self.title,
            "kind": self.kind,
            "predicted_attenuation": att,
            "predicted_verdict": self.predicted_verdict,
            "applicability": self.applicability,
            "applied": self.applied,
            "detail": self.detail,
            "edit": self.edit,
        }


@dataclass
class Finding:
    code: str
    name: str
    severity: str
    message: str
    fix: str = ""
    location: Location | None = None
    fixes: list[Fix] = field(default_factory=list)  # best first (gradlint/advise)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "location": self.location.to_json() if self.location else None,
            "fixes": [f.to_json() for f in self.fixes],
        }

    @property
    def is_problem(self) -> bool:
        return self.severity in PROBLEM_SEVERITIES
