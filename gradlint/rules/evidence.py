"""Evidence gating: an architecture finding (GL1xx) is a problem only when the numbers agree.

A deep plain stack, missing normalization or default init is a *risk*; whether it bites depends on
widths, init and activations together. The estimate (or, with ``--verify``, the measured batch)
knows: when the first layer's gradient stays inside the healthy margin (a decade inside each
threshold: 1e-2 .. 1e3 by default), the finding becomes a note that says why it was not raised.
``[tool.gradlint] structural = "always"`` keeps every architecture finding a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..ir.verdict import EXPLODING, HEALTHY, VANISHING, Thresholds
from .finding import Finding


@dataclass(frozen=True)
class Evidence:
    attenuation: float  # the first layer's gradient RMS relative to the last layer's
    source: str  # "the estimate" or "the measured batch"


def evidence_of(estimate: Any, measurement: Any, thresholds: Thresholds) -> Evidence | None:
    """The measurement when there is one, else the estimate; None when neither judges the model
    (no attenuation, or a structural zero: a zero-initialized weight hides the gradient's scale)."""
    judged = (VANISHING, HEALTHY, EXPLODING)
    if measurement is not None and measurement.attenuation is not None and measurement.verdict in judged:
        return Evidence(measurement.attenuation, "the measured batch")
    if estimate is not None and estimate.attenuation is not None and not estimate.zero_reason:
        if thresholds.verdict(estimate.attenuation) in judged:
            return Evidence(estimate.attenuation, "the estimate")
    return None


def gate(finding: Finding, evidence: Evidence | None, thresholds: Thresholds) -> Finding:
    """The finding as a note when the evidence says the gradients stay healthy; else unchanged."""
    if evidence is None or not thresholds.within_margin(evidence.attenuation):
        return finding
    lo, hi = thresholds.margin
    why = (f"; not raised: {evidence.source} keeps the first layer's gradient at {evidence.attenuation:.1e} of the "
           f"last layer's, inside the healthy margin ({lo:g} to {hi:g})")
    return replace(finding, severity="info", message=finding.message + why)
