"""A finding: one rule's verdict on one model, at the user's line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir.source import Location

SEVERITIES = ("error", "warning", "info")
# Problems set exit code 1 and are counted; ``info`` findings are notes: shown, never counted.
PROBLEM_SEVERITIES = frozenset({"error", "warning"})


@dataclass
class Finding:
    code: str
    name: str
    severity: str
    message: str
    fix: str = ""
    location: Location | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "location": self.location.to_json() if self.location else None,
        }

    @property
    def is_problem(self) -> bool:
        return self.severity in PROBLEM_SEVERITIES
