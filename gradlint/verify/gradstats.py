"""Statistics of one layer's weight gradient dL/dW: zeros, signs, non-finite entries and the
histogram of log10|g|.

Cost matters (a ResNet-50 has 25 M gradient entries, and --verify must stay within 1.3x of a
plain forward+backward), so the exact counts take one pass each over the gradient without
copying it (a float32 norm, ``count_nonzero``), and the sign split and the histogram are read
from an evenly strided sample of at most ``SAMPLE`` entries: shares to about 0.2% for a large
layer, exact for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .measurement import HIST_BINS, HIST_HIGH, HIST_LOW

SAMPLE = 1 << 18  # 262,144 entries: a share of 1% is read to +-0.02%


@dataclass
class GradStats:
    numel: int = 0
    zeros: int = 0
    nonfinite: int = 0
    positive: int = 0
    negative: int = 0
    hist: list[int] = field(default_factory=lambda: [0] * HIST_BINS)  # sampled finite nonzero entries
    hist_negative: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    sampled: bool = False  # hist and the sign split come from a strided sample
    used: bool = False  # at least one of the tensors received a gradient


def _nonfinite(g: Any) -> int:
    import math

    import torch

    if math.isfinite(float(torch.linalg.vector_norm(g))):
        return 0  # a NaN or an inf entry makes the norm non-finite: the common case is one fast pass
    return g.numel() - int(torch.count_nonzero(torch.isfinite(g)))


def signed_log_histogram(values: Any) -> tuple[list[int], list[int]]:
    """(counts of log10|v| for v > 0, the same for v < 0) in the shared bins. Zeros and
    non-finite entries are not counted; magnitudes beyond the bins land in the end bins.

    One ``histc`` over a signed copy: positives map to [0, span), negatives to (-span, 0).
    """
    import torch

    v = values.detach().reshape(-1)
    if v.dtype not in (torch.float32, torch.float64):
        v = v.float()
    zeros = v.numel() - int(torch.count_nonzero(v))
    a = v.abs()
    a.log10_().clamp_(HIST_LOW, HIST_HIGH - 1e-3).sub_(HIST_LOW)  # log10(0) = -inf lands in bin 0
    if _nonfinite(v):
        a = torch.where(torch.isfinite(v), a, torch.nan)  # histc ignores NaN
    span = HIST_HIGH - HIST_LOW
    signed = torch.where(v < 0, -(a + 1e-6), a)
    counts = torch.histc(signed, bins=2 * HIST_BINS, min=-span, max=span).tolist()
    neg = [int(c) for c in reversed(counts[:HIST_BINS])]
    pos = [int(c) for c in counts[HIST_BINS:]]
    pos[0] -= zeros
    return pos, neg


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
            if g.dtype not in (torch.float32, torch.float64):
                g = g.float()
            nonfinite = _nonfinite(g)
            zeros = g.numel() - int(torch.count_nonzero(g))
            s.nonfinite += nonfinite
            s.zeros += zeros
            flat = g.reshape(-1)
            step = max(1, -(-flat.numel() // SAMPLE))
            sample = flat[::step] if step > 1 else flat
            s.sampled = s.sampled or step > 1
            pos, neg = signed_log_histogram(sample)
            s.hist = [a + b + c for a, b, c in zip(s.hist, pos, neg)]
            s.hist_negative = [a + b for a, b in zip(s.hist_negative, neg)]
            # the sign split: exact when the whole tensor was histogrammed, else scaled from the sample
            nonzero = g.numel() - zeros - nonfinite
            n_pos, n_neg = sum(pos), sum(neg)
            if n_pos + n_neg and step > 1:
                p = round(nonzero * n_pos / (n_pos + n_neg))
                s.positive += p
                s.negative += nonzero - p
            else:
                s.positive += n_pos
                s.negative += n_neg
    return s
