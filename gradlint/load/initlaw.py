"""The value law an initialization leaves in a tensor, followed op by op (no torch here).

On the meta device an init op writes no values, but its arguments say what the values would be.
``InitRecorder`` (initcheck.py) feeds each in-place op on a parameter to the functions below and
keeps, per parameter, the resulting :class:`Law`: the mean and second moment E[w^2] the
estimator needs, the support (so a later ``clamp_`` can be judged) and, while the law is still
one of three families, its parameters:

* ``uniform``: U(lo, hi), a constant when lo == hi (``uniform_``, ``fill_``, ``zero_``);
* ``normal``: N(mu, sigma^2) truncated to [lo, hi] (``normal_``; ``uniform_`` then ``erfinv_``,
  the truncated-normal recipe of torch.nn.init and timm);
* ``moments``: only mean, E[w^2] and the support are known (after a clamp that cut real mass).

Affine ops (``mul_``/``div_``/``add_``/``sub_`` by a number) keep the family; ``clamp_`` is exact
for the first two families (the clipped mass moves to the bounds) and a no-op for the third when
the bounds hold its support. Anything else returns None: unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

INF = math.inf
_SQRT2 = math.sqrt(2.0)
_STD_NORMAL = NormalDist()
_PLAIN = ("zeros", "ones", "constant", "normal", "uniform", "trunc_normal")


@dataclass(frozen=True)
class Law:
    kind: str  # uniform | normal | moments
    mean: float
    second: float  # E[w^2]
    lo: float  # support
    hi: float
    mu: float = 0.0  # normal: the untruncated mean and std
    sigma: float = 0.0
    via: str = ""  # the nn.init function that set it, when one did ("kaiming_normal_")

    @property
    def zero(self) -> bool:
        return self.mean == 0.0 and self.second == 0.0

    def describe(self) -> str:
        """Short, for explanations: ``normal_(std=0.01)``, ``zeros``, ``uniform_(-0.1, 0.1)``."""
        if self.kind == "uniform" and self.lo == self.hi:
            text = "zeros" if self.lo == 0.0 else f"fill_({self.lo:.3g})"
        elif self.kind == "uniform":
            text = f"uniform_({self.lo:.3g}, {self.hi:.3g})"
        elif self.kind == "normal":
            mean = f"mean={self.mu:.3g}, " if self.mu else ""
            if math.isinf(self.lo) and math.isinf(self.hi):
                text = f"normal_({mean}std={self.sigma:.3g})"
            else:
                text = f"trunc_normal_({mean}std={self.sigma:.3g}, a={self.lo:.3g}, b={self.hi:.3g})"
        else:
            text = f"mean {self.mean:.3g}, rms {math.sqrt(max(self.second, 0.0)):.3g}"
        # "zeros from zeros_", "normal_(std=1) from normal_" say nothing more
        return f"{text} from {self.via}" if self.via and self.via.rstrip("_") not in _PLAIN else text


def constant(v: float, via: str = "") -> Law:
    v = float(v)
    return Law("uniform", v, v * v, v, v, via=via)


def uniform(a: float, b: float, via: str = "") -> Law | None:
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)) or a > b:
        return None
    if a == b:
        return constant(a, via)
    return Law("uniform", (a + b) / 2, (a * a + a * b + b * b) / 3, a, b, via=via)


def normal(mu: float, sigma: float, lo: float = -INF, hi: float = INF, via: str = "") -> Law | None:
    """N(mu, sigma^2) truncated to [lo, hi]."""
    mu, sigma, lo, hi = float(mu), float(sigma), float(lo), float(hi)
    if not (math.isfinite(mu) and math.isfinite(sigma)) or sigma < 0 or lo > hi or math.isnan(lo) or math.isnan(hi):
        return None
    if sigma == 0.0:
        return constant(min(max(mu, lo), hi), via) if lo <= mu <= hi else None
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    mass = _mass(a, b)
    if not mass > 0.0:
        return None
    m1, m2 = _partial(a, b)
    ez, ez2 = m1 / mass, m2 / mass
    return Law("normal", mu + sigma * ez, mu * mu + 2 * mu * sigma * ez + sigma * sigma * ez2, lo, hi, mu, sigma, via)


def affine(law: Law | None, scale: float, shift: float = 0.0) -> Law | None:
    """scale * w + shift."""
    if law is None:
        return None
    scale, shift = float(scale), float(shift)
    if not (math.isfinite(scale) and math.isfinite(shift)):
        return None
    if scale == 0.0:
        return constant(shift)
    lo, hi = law.lo * scale + shift, law.hi * scale + shift  # scale is finite and not 0: no nan
    if scale < 0:
        lo, hi = hi, lo
    via = law.via if (scale, shift) == (1.0, 0.0) else ""  # no longer what that function gave
    mean = scale * law.mean + shift
    second = scale * scale * law.second + 2 * scale * shift * law.mean + shift * shift
    if law.kind == "normal":
        return Law("normal", mean, second, lo, hi, scale * law.mu + shift, abs(scale) * law.sigma, via)
    return Law(law.kind, mean, second, lo, hi, via=via)


def clamp(law: Law | None, lo: float | None, hi: float | None) -> Law | None:
    """torch.clamp_(min=lo, max=hi): values outside move to the bound."""
    if law is None:
        return None
    c = -INF if lo is None else float(lo)
    d = INF if hi is None else float(hi)
    if math.isnan(c) or math.isnan(d):
        return None
    if c > d:  # torch sets everything to max
        return constant(d, law.via)
    if c <= law.lo and law.hi <= d:
        return law  # the bounds hold the whole support: a no-op
    new_lo, new_hi = max(law.lo, c), min(law.hi, d)
    if law.hi <= c or law.lo >= d:  # everything lands on one bound
        return constant(c if law.hi <= c else d, law.via)
    if law.kind == "uniform":
        width = law.hi - law.lo
        p_low = (new_lo - law.lo) / width
        p_high = (law.hi - new_hi) / width
        m1 = (new_hi ** 2 - new_lo ** 2) / (2 * width)
        m2 = (new_hi ** 3 - new_lo ** 3) / (3 * width)
        mean = (c * p_low if p_low else 0.0) + m1 + (d * p_high if p_high else 0.0)
        second = (c * c * p_low if p_low else 0.0) + m2 + (d * d * p_high if p_high else 0.0)
        return Law("moments", mean, second, new_lo, new_hi, via=law.via)
    if law.kind == "normal" and law.sigma > 0:
        s, mu = law.sigma, law.mu
        a, b = (law.lo - mu) / s, (law.hi - mu) / s
        g, h = (new_lo - mu) / s, (new_hi - mu) / s
        mass = _mass(a, b)
        p_low = _mass(a, g) / mass if g > a else 0.0
        p_high = _mass(h, b) / mass if h < b else 0.0
        if p_low + p_high < 1e-15:
            # the cut tails hold no mass a double can see: still the same truncated normal
            return Law("normal", law.mean, law.second, new_lo, new_hi, mu, s, law.via)
        m1, m2 = _partial(g, h)
        ez = (g * p_low if p_low else 0.0) + m1 / mass + (h * p_high if p_high else 0.0)
        ez2 = (g * g * p_low if p_low else 0.0) + m2 / mass + (h * h * p_high if p_high else 0.0)
        return Law("moments", mu + s * ez, mu * mu + 2 * mu * s * ez + s * s * ez2, new_lo, new_hi, via=law.via)
    return None  # only the moments are known: a clamp that cuts the support is not


def erfinv(law: Law | None) -> Law | None:
    """torch.erfinv_: U(a, b) inside [-1, 1] becomes N(0, 1/2) truncated to [erfinv(a), erfinv(b)]."""
    if law is None or law.kind != "uniform" or law.lo < -1.0 or law.hi > 1.0:
        return None
    lo, hi = _erfinv(law.lo), _erfinv(law.hi)
    if law.lo == law.hi:
        return constant(lo, law.via) if math.isfinite(lo) else None
    # P(erfinv(U) <= t) = (erf(t) - a) / (b - a), and d erf(t)/dt is the N(0, 1/2) density
    return normal(0.0, 1.0 / _SQRT2, lo, hi, law.via)


def _erfinv(x: float) -> float:
    if x <= -1.0:
        return -INF
    if x >= 1.0:
        return INF
    return _STD_NORMAL.inv_cdf((x + 1.0) / 2.0) / _SQRT2


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) if math.isfinite(x) else 0.0


def _mass(a: float, b: float) -> float:
    """P(a <= Z <= b) for Z ~ N(0, 1), accurate in either tail."""
    if a > 0:
        return _cdf(-a) - _cdf(-b)
    return _cdf(b) - _cdf(a)


def _partial(a: float, b: float) -> tuple[float, float]:
    """E[Z; a <= Z <= b] and E[Z^2; a <= Z <= b] for Z ~ N(0, 1)."""
    pa, pb = _pdf(a), _pdf(b)
    xa = a * pa if math.isfinite(a) else 0.0
    xb = b * pb if math.isfinite(b) else 0.0
    return pa - pb, _mass(a, b) + xa - xb
