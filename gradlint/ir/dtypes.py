"""The floating-point range a model computes in: where a signal underflows or overflows.

Shared by the estimate (a predicted RMS against the range), the measured pass (``--verify
--dtype`` runs under autocast) and GL204. No torch here: the numbers are ``torch.finfo``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The dtypes ``--dtype`` accepts (the model's own dtype may also be float64).
CHOICES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class DtypeRange:
    name: str
    tiny: float  # the smallest normal number: below it a value loses precision, then flushes to 0
    max: float  # the largest finite number: beyond it, inf (and NaN after the next operation)


RANGES: dict[str, DtypeRange] = {
    "float32": DtypeRange("float32", 1.1754943508222875e-38, 3.4028234663852886e38),
    "float16": DtypeRange("float16", 6.103515625e-05, 65504.0),
    "bfloat16": DtypeRange("bfloat16", 1.1754943508222875e-38, 3.3895313892515355e38),
    "float64": DtypeRange("float64", 2.2250738585072014e-308, 1.7976931348623157e308),
}

_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
            "fp64": "float64", "double": "float64"}


def normalize(name: str | None) -> str | None:
    """'torch.float16' / 'fp16' / 'half' -> 'float16'; None stays None; an unknown name is returned as is."""
    if name is None:
        return None
    text = str(name).strip().lower().removeprefix("torch.")
    return _ALIASES.get(text, text)


def range_of(name: str | None) -> DtypeRange:
    """The range of a dtype name (float32 when unknown)."""
    return RANGES.get(normalize(name) or "float32", RANGES["float32"])


def peak_factor(count: int) -> float:
    """How far the largest of ``count`` Gaussian entries lies above their RMS: sqrt(2 ln count)
    (at least 1). A tensor whose RMS times this exceeds the dtype's max holds an inf."""
    return math.sqrt(2.0 * math.log(count)) if count > 2 else 1.0
