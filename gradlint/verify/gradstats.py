"""Statistics of one layer's weight gradient dL/dW: zeros, signs, non-finite entries and the
histogram of log10|g|. Computed on the gradient's device, one layer at a time, so the extra
memory is a few temporaries the size of the largest layer, never a copy of all gradients."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .measurement import HIST_BINS, HIST_HIGH, HIST_LOW, HIST_WIDTH


@dataclass
class GradStats:
    numel: int = 0
    zeros: int = 0
    nonfinite: int = 0
    positive: int = 0
    negative: int = 0
    hist: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    hist_negative: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    used: bool = False  # at least one of the tensors received a gradient


def _log_hist(values: Any) -> list[int]:
    """Counts of log10(values) (values > 0) in the shared bins; out-of-range ends clamp in."""
    import torch

    if values.numel() == 0:
        return [0] * HIST_BINS
    logs = torch.log10(values.float()).clamp_(HIST_LOW, HIST_HIGH - HIST_WIDTH / 2)
    counts = torch.histc(logs, bins=HIST_BINS, min=HIST_LOW, max=HIST_HIGH)
    return [int(c) for c in counts.tolist()]


def grad_stats(grads: Sequence[Any], numels: Sequence[int]) -> GradStats:
    """``grads``: the layer's weight gradients (None for a tensor no gradient reached, counted as
    zeros); ``numels``: the sizes of the weight tensors."""
    import torch

    s = GradStats(numel=int(sum(numels)))
    with torch.no_grad():
        for g, n in zip(grads, numels):
            if g is None:
                s.zeros += int(n)
                continue
            s.used = True
            g = g.detach()
            finite = torch.isfinite(g)
            n_finite = int(finite.sum())
            s.nonfinite += g.numel() - n_finite
            s.zeros += int((g == 0).sum())
            pos = g[(g > 0) & finite]
            neg = g[(g < 0) & finite]
            s.positive += pos.numel()
            s.negative += neg.numel()
            for acc, values in ((s.hist, pos), (s.hist_negative, neg.abs())):
                for i, c in enumerate(_log_hist(values)):
                    acc[i] += c
            del finite, pos, neg
    # hist counts both signs; hist_negative the negative share of it
    s.hist = [a + b for a, b in zip(s.hist, s.hist_negative)]
    return s
