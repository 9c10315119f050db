"""Verdicts: what an attenuation (the first layer's gradient relative to the last layer's) says.

One definition shared by the estimate, the measurement, the rules and the renderers. The
thresholds are the design card's (AUTOTRAINER's 1e-3 for vanishing; 1e4 for exploding, above the
1e2-6e3 that standard BatchNorm networks measure at initialization) and configurable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VANISHING, HEALTHY, EXPLODING, STRUCTURAL_ZERO = "vanishing", "healthy", "exploding", "structural-zero"


@dataclass(frozen=True)
class Thresholds:
    vanishing: float = 1e-3
    exploding: float = 1e4

    def verdict(self, attenuation: float | None, structural_zero: bool = False) -> str | None:
        """``structural_zero``: a zero-initialized weight downstream explains a zero attenuation."""
        if structural_zero and (attenuation is None or attenuation == 0.0):
            return STRUCTURAL_ZERO
        if attenuation is None or math.isnan(attenuation):
            return None
        if attenuation < self.vanishing:
            return VANISHING
        if attenuation > self.exploding:
            return EXPLODING
        return HEALTHY

    @property
    def margin(self) -> tuple[float, float]:
        """The healthy margin: a decade inside each threshold (1e-2 .. 1e3 by default). Evidence
        outside it (near a threshold or past it) makes an architecture warning a problem."""
        return self.vanishing * 10, self.exploding / 10

    def within_margin(self, attenuation: float) -> bool:
        lo, hi = self.margin
        return lo <= attenuation <= hi
