"""What the estimator knows about one tensor: forward second moments and the backward gradient.

Per element, averaged over the batch, positions (tokens, pixels) and channels:

* ``m``  = E[x^2], the second moment (docs/estimator.md pitfall 2: not the variance);
* ``mu`` = E[x], the mean over everything (what LayerNorm subtracts from each token);
* ``c``  = E[x_i x_j] for two *samples* at any positions of one channel: the per-channel constant
  part (a bias, sigmoid's 0.5 pushed through W) that BatchNorm removes and LayerNorm does not;
* ``p``  = E[x_i x_j] for two *positions of one sample* in one channel (>= c): what makes the
  weight gradient of a conv layer grow with the number of positions when the gradient is
  coherent across them (after global average pooling);
* ``s``  = the energy of a *spatial pattern shared by all samples* (a position-dependent offset:
  zero padding makes border outputs see fewer taps, and deep convs spread it smoothly). Like a
  constant it is the same in every sample, unlike one it averages out over all positions; it
  survives local pooling and BatchNorm counts it as variance.

The gradient of a tensor: ``g`` = E||dL/dx||^2 over the whole tensor (all samples), the
total-norm quantity that passes unchanged through data movement (pitfall 1); ``rho`` = the
correlation of the gradient between two positions of one sample; ``centered`` = the share of it
that sums to zero over (batch, positions) in each channel, as BatchNorm's backward makes it: a
weight gradient built from a centered gradient never sees the per-channel constant of its input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    m: float
    mu: float = 0.0
    c: float = 0.0
    p: float = 0.0
    s: float = 0.0
    # The entries' marginal distribution as (values, weights), when it is far from Gaussian and we
    # know it: the stream of a post-activation residual network, relu(stream + branch), block after block.
    dist: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def var(self) -> float:
        return max(self.m - self.mu * self.mu, 0.0)

    def clean(self) -> "Signal":
        """Keep mu^2 <= c <= p <= m and c + s <= m (rounding in long chains can break the order)."""
        m = max(self.m, 0.0)
        mu2 = min(self.mu * self.mu, m)
        p = min(max(self.p, mu2), m)
        c = min(max(self.c, mu2), p)
        s = min(max(self.s, 0.0), max(m - c, 0.0))
        mu = self.mu if self.mu * self.mu <= m else (m ** 0.5 if self.mu > 0 else -(m ** 0.5))
        return Signal(m, mu, c, p, s, self.dist)

    def scaled(self, k2: float, k: float | None = None) -> "Signal":
        """The statistics of k * x, given k^2 (and k itself for the mean)."""
        k = k if k is not None else k2 ** 0.5
        return Signal(self.m * k2, self.mu * k, self.c * k2, self.p * k2, self.s * k2)

    @property
    def rho_same_position(self) -> float:
        """Correlation of two samples' values at one position of one channel, mean removed."""
        v = self.var
        return 0.0 if v <= 0 else min(max((self.c + self.s - self.mu * self.mu) / v, 0.0), 1.0)

    @property
    def rho_samples(self) -> float:
        """Correlation of two samples' values of one channel, mean removed."""
        v = self.var
        return 0.0 if v <= 0 else min(max((self.c - self.mu * self.mu) / v, 0.0), 1.0)

    @property
    def rho_positions(self) -> float:
        """Correlation of two positions' values of one channel in one sample, mean removed."""
        v = self.var
        return 0.0 if v <= 0 else min(max((self.p - self.mu * self.mu) / v, 0.0), 1.0)


UNIT = Signal(1.0)  # a standard normal input


@dataclass(frozen=True)
class Grad:
    g: float
    rho: float = 0.0
    centered: float = 0.0
    # energy of the component along the all-ones direction over channels (the same value in every
    # channel of a sample): what a residual stream of positive-mean activations amplifies
    ones: float = 0.0
    # (add node, k): this gradient's ones-component is k times the one of the gradient at that add's
    # output, coherently (a residual branch phi(W x) whose mask follows W's row sums: dense.py)
    echo: tuple[int, float] | None = None
    # energy of a component that is the same in every branch's gate of a selective-kernel attention
    # (SKNet, ResNeSt: y = sum_r a_r * x_r with a = softmax over r): each gate's gradient sums
    # g * x_r over the positions it scales, and the part from the branches' shared mean is one
    # value for all r, which the softmax across r removes (merge.py sets it, attention.py drops it)
    common: float = 0.0

    def scaled(self, k: float) -> "Grad":
        return Grad(self.g * k, self.rho, self.centered, self.ones * k, common=self.common * k)

    def like(self, g: float, rho: float | None = None) -> "Grad":
        """Another gradient with this one's structure (a linear map applied per position)."""
        ones = self.ones * g / self.g if self.g > 0 else 0.0
        return Grad(g, self.rho if rho is None else rho, self.centered, ones)


def merge_grads(grads: list[Grad]) -> Grad | None:
    """Gradients from several consumers add; their cross terms vanish (independent weights), except
    the coherent ones-components ``propagate.backward`` adds beforehand."""
    total = sum(x.g for x in grads)
    if not grads:
        return None
    if total <= 0:
        return Grad(0.0, 0.0)
    return Grad(total, sum(x.g * x.rho for x in grads) / total, sum(x.g * x.centered for x in grads) / total,
                min(sum(x.ones for x in grads), total), common=min(sum(x.common for x in grads), total))
