"""What one measured pass found: the ``Measurement`` that GL3xx rules and the renderers read.

Plain data, no torch, so rules can import it at module level. The pass that fills it is
``verify/passes.py``; the contract's own numbers (grad_norm, grad_rms, grad_ratio) come from
``verify/measure.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..ir.source import Location
from ..ir.verdict import STRUCTURAL_ZERO, Thresholds

# Histograms of log10|g| share one set of bins across layers and models, so they compare and
# plot on one axis: quarter-decade bins from 1e-40 to 1e10 (float32 subnormals reach 1.4e-45;
# entries beyond either end land in the end bins).
HIST_LOW = -40.0
HIST_HIGH = 10.0
HIST_BINS = 200
HIST_WIDTH = (HIST_HIGH - HIST_LOW) / HIST_BINS




@dataclass
class ActivationSite:
    """One activation in the user's code (a module, or a functional call at one line), summed over
    its calls in the pass."""

    key: str  # the module's qualified name, or "op@path:line:col#layer" for a functional call
    op: str  # sigmoid, tanh, relu, ...
    family: str  # "saturating" | "relu"
    location: Location | None
    module: str | None  # qualified name when it is a module
    layer: str | None  # the weight layer that ran last before it (whose output it usually reads)
    threshold: float  # |pre-activation| beyond this counts as saturated (saturating family)
    calls: int = 0
    count: int = 0  # pre-activation entries seen
    saturated: int = 0  # saturating family: entries in the flat tails
    inactive: int = 0  # ReLU family: entries with zero derivative (<= 0, or >= 6 for ReLU6)
    units: int = 0  # ReLU family: units (one coordinate of one call, across the batch)
    dead_units: int = 0  # ... inactive for every example of the batch

    @property
    def saturated_fraction(self) -> float:
        return self.saturated / self.count if self.count else 0.0

    @property
    def inactive_fraction(self) -> float:
        return self.inactive / self.count if self.count else 0.0

    @property
    def dead_fraction(self) -> float:
        return self.dead_units / self.units if self.units else 0.0

    @property
    def fraction(self) -> float:
        """The family's red-flag fraction: saturated for sigmoid/tanh, inactive for ReLU."""
        return self.saturated_fraction if self.family == "saturating" else self.inactive_fraction


@dataclass
class LayerMeasurement:
    """One weight layer (the contract's list, forward execution order)."""

    module: str
    type: str
    location: Location | None
    embedding: bool
    numel: int  # weight entries over the layer's weight tensors
    grad_norm: float | None  # L2 norm of dL/dW; None when the gradient is not finite
    grad_rms: float | None
    grad_ratio: float | None = None  # grad_rms / the last layer's grad_rms
    zeros: int = 0  # entries exactly 0
    nonfinite: int = 0  # NaN or +-inf entries
    positive: int = 0  # finite entries > 0
    negative: int = 0  # finite entries < 0
    hist: list[int] = field(default_factory=list)  # log10|g| of finite nonzero entries, HIST bins
    hist_negative: list[int] = field(default_factory=list)  # the same for the negative entries only
    delta_norm: float | None = None  # ||dL/d(output)|| summed over the layer's calls
    delta_rms: float | None = None
    delta_nonfinite: int = 0
    calls: int = 0  # forward calls seen
    used: bool = True  # False: no gradient reached its weights (not part of the loss)
    structural_zero: bool = False  # all-zero gradient because a zero-initialized weight sits downstream
    zero_cause: str | None = None  # that weight's name

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0

    @property
    def positive_share(self) -> float | None:
        """Finite nonzero entries that are positive (0.5 for a sign-symmetric gradient)."""
        n = self.positive + self.negative
        return self.positive / n if n else None

    def fraction_below(self, log10_floor: float) -> float:
        """Entries with |g| below 10**log10_floor (exact zeros included), to the histogram's
        quarter-decade resolution. Non-finite entries count as not small."""
        if not self.numel or not self.hist:
            return 0.0
        k = int(math.floor((log10_floor - HIST_LOW) / HIST_WIDTH + 1e-9))
        k = max(0, min(HIST_BINS, k))
        return (self.zeros + sum(self.hist[:k])) / self.numel


@dataclass
class Measurement:
    """Everything the pass measured for one model."""

    layers: list[LayerMeasurement]
    activations: list[ActivationSite]
    device: str
    loss: str  # "random projection (seed 0)" or the user's function
    input_source: str
    loss_value: float | None
    attenuation: float | None = None  # grad_ratio of the first non-embedding weight layer
    verdict: str | None = None  # vanishing | healthy | exploding | structural-zero | None
    forward_backward_s: float = 0.0  # the pass itself
    statistics_s: float = 0.0  # reading the gradients afterwards
    peak_memory_bytes: int | None = None  # above the memory in use when the pass started
    memory_method: str = ""  # how the peak was measured
    nonfinite_origin: dict[str, Any] | None = None  # {"what": ..., "location": Location | None}
    zero_parameters: list[str] = field(default_factory=list)  # all-zero weights at init
    notes: list[str] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)  # what the verdict used
    call_order: dict[str, int] = field(default_factory=dict)  # weight layer -> rank of its first finished call

    @property
    def first_layer(self) -> LayerMeasurement | None:
        return next((m for m in self.layers if not m.embedding), None)

    @property
    def has_nonfinite(self) -> bool:
        return (self.loss_value is not None and not math.isfinite(self.loss_value)) or any(
            m.nonfinite or m.delta_nonfinite for m in self.layers)

    def layer(self, module: str) -> LayerMeasurement | None:
        return next((m for m in self.layers if m.module == module), None)

    def activations_after(self, module: str) -> list[ActivationSite]:
        return [a for a in self.activations if a.layer == module]


def summarize(m: Measurement, thresholds: Thresholds) -> None:
    """Fill ``attenuation`` and ``verdict``; a structural zero outranks vanishing."""
    m.thresholds = thresholds
    first = m.first_layer
    if first is None:
        m.notes.append("no non-embedding weight layer: no attenuation to measure")
        return
    if first.structural_zero:
        m.attenuation, m.verdict = (first.grad_ratio if first.grad_ratio is not None else 0.0), STRUCTURAL_ZERO
        return
    last = m.layers[-1]
    if first.grad_ratio is None:
        if last.structural_zero:
            m.verdict = STRUCTURAL_ZERO
        elif last.grad_rms == 0.0 and not m.has_nonfinite:
            m.notes.append(f"the last weight layer ({last.module}) got no gradient: grad_ratio is undefined")
        return
    m.attenuation = first.grad_ratio
    m.verdict = thresholds.verdict(first.grad_ratio)
