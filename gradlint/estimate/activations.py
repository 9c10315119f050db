"""Every activation the capture knows, as functions with the expectations the estimator needs.

For a pre-activation X ~ N(mu, var) (docs/estimator.md, "Mean-field core"):
``E[phi(X)]``, ``E[phi(X)^2]`` (the forward second moment), ``E[phi'(X)^2]`` (the backward
total-norm gain), and for two correlated units ``E[phi(U) phi(V)]`` / ``E[phi'(U) phi'(V)]``
(how much of the signal, and of the gradient, is shared between positions or samples).

Piecewise-linear activations (ReLU, LeakyReLU, ReLU6, hardtanh, hardsigmoid, shrinks, threshold)
and the ELU family (ELU, CELU, SELU) use exact closed forms; the rest use quadrature split at
their kinks (``gaussian.py``). ``sup_df`` is max |phi'|, the factor of the worst-case bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from . import gaussian as gs

INF = math.inf
Fn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Moments:
    """Expectations of phi under N(mu, var)."""

    ef: float  # E[phi]
    ef2: float  # E[phi^2]
    edf: float  # E[phi']
    edf2: float  # E[phi'^2]


class Activation:
    """A smooth activation: quadrature (split at ``kinks``) for every expectation."""

    def __init__(self, name: str, f: Fn, df: Fn, kinks: tuple[float, ...] = (), sup_df: float | None = None):
        self.name = name
        self.f = f
        self.df = df
        self.kinks = kinks
        self._sup = sup_df

    @property
    def sup_df(self) -> float:
        """max |phi'| over the real line (numerically, on a fine grid, unless given)."""
        if self._sup is None:
            xs = np.linspace(-30.0, 30.0, 600001)
            self._sup = float(np.max(np.abs(self.df(xs))))
        return self._sup

    def moments(self, mu: float, var: float) -> Moments:
        xs, ws = gs.line_nodes(mu, var, self.kinks)
        f, df = self.f(xs), self.df(xs)
        return Moments(float(ws @ f), float(ws @ (f * f)), float(ws @ df), float(ws @ (df * df)))

    # E[g(V)] for V ~ N(cond_mu, cond_var), vectorised over cond_mu: the inner integrals.
    def inner_f(self, cond_mu: np.ndarray, cond_var: float) -> np.ndarray:
        return self._inner(self.f, cond_mu, cond_var)

    def inner_df(self, cond_mu: np.ndarray, cond_var: float) -> np.ndarray:
        return self._inner(self.df, cond_mu, cond_var)

    def inner_moments(self, cond_mu: np.ndarray, cond_var: float) -> tuple:
        """(E phi, E phi^2, E phi', E phi'^2) of N(cond_mu, cond_var), vectorised over cond_mu."""
        return (self._inner(self.f, cond_mu, cond_var), self._inner(lambda x: self.f(x) ** 2, cond_mu, cond_var),
                self._inner(self.df, cond_mu, cond_var), self._inner(lambda x: self.df(x) ** 2, cond_mu, cond_var))

    def moments_of_sum(self, inner: "Activation", h_mu: float, h_var: float, f_mu: float, f_var: float) -> Moments:
        """Moments of phi(inner(h) + f) for h ~ N(h_mu, h_var) and an independent f ~ N(f_mu, f_var):
        an activation after a residual add whose skip input is itself an activation's output (a
        post-ReLU stream has many exact zeros: the sum is far from Gaussian)."""
        xs, ws = gs.line_nodes(h_mu, h_var, inner.kinks)
        ef, ef2, edf, edf2 = self.inner_moments(inner.f(xs) + f_mu, f_var)
        return Moments(float(ws @ ef), float(ws @ ef2), float(ws @ edf), float(ws @ edf2))

    def moments_of_mixture(self, values, weights, f_mu: float, f_var: float, keep: int = 64):
        """Moments of phi(y + f) for y drawn from a discrete distribution (values, weights) and an
        independent f ~ N(f_mu, f_var), and the output's own distribution compressed to ``keep``
        points (sorted, equal-mass chunks averaged): what the next block reads as its skip input."""
        y = np.asarray(values, dtype=float)
        w = np.asarray(weights, dtype=float)
        ef, ef2, edf, edf2 = self.inner_moments(y + f_mu, f_var)
        mom = Moments(float(w @ ef), float(w @ ef2), float(w @ edf), float(w @ edf2))
        z, wz = gs._hermite(12)
        out = self.f(y[:, None] + f_mu + math.sqrt(max(f_var, 0.0)) * z[None, :]).ravel()
        ow = (w[:, None] * wz[None, :]).ravel()
        order = np.argsort(out)
        out, ow = out[order], ow[order]
        edges = np.searchsorted(np.cumsum(ow), np.linspace(0, ow.sum(), keep + 1)[1:-1])
        vals, wts = [], []
        for chunk_v, chunk_w in zip(np.split(out, edges), np.split(ow, edges)):
            if chunk_w.sum() > 0:
                vals.append(float(chunk_v @ chunk_w / chunk_w.sum()))
                wts.append(float(chunk_w.sum()))
        return mom, (tuple(vals), tuple(wts))

    def shared_of_sum(self, inner: "Activation", h_mu: float, h_var: float, rho: float, f_mu: float,
                      f_var: float) -> float:
        """E[phi(inner(h1) + f1) phi(inner(h2) + f2)] for h1, h2 correlated by ``rho`` through a shared
        per-channel part and f1, f2 independent (a BatchNorm'd branch has no channel constant):
        the shared moment (c or p) of the activation after a residual add of a rectified stream."""
        rho = min(max(rho, 0.0), 1.0)
        a, wa = gs.line_nodes(h_mu, rho * h_var)
        e, we = gs.line_nodes(0.0, (1.0 - rho) * h_var)
        x = inner.f(a[:, None] + e[None, :]) + f_mu  # (shared part, own part)
        ef = self.inner_moments(x.ravel(), f_var)[0].reshape(x.shape)
        per_channel = ef @ we  # E over the own part and the branch, for each shared value
        return float(wa @ (per_channel * per_channel))

    def _inner(self, g: Fn, cond_mu: np.ndarray, cond_var: float) -> np.ndarray:
        if cond_var <= 1e-14:
            return g(cond_mu)
        return gs.hermite_inner(g)(cond_mu, cond_var)

    def cross_f(self, mu: float, var: float, rho: float) -> float:
        """E[phi(U) phi(V)] for U, V ~ N(mu, var) with correlation rho."""
        return self._cross(self.f, self.inner_f, mu, var, rho, second=lambda m: m.ef2, first=lambda m: m.ef)

    def cross_df(self, mu: float, var: float, rho: float) -> float:
        """E[phi'(U) phi'(V)] for U, V ~ N(mu, var) with correlation rho."""
        return self._cross(self.df, self.inner_df, mu, var, rho, second=lambda m: m.edf2, first=lambda m: m.edf)

    def _cross(self, g: Fn, inner, mu, var, rho, second, first) -> float:
        if var <= 0.0:
            v = float(g(np.array([mu]))[0])
            return v * v
        if rho >= 1.0 - 1e-9:
            return second(self.moments(mu, var))
        if abs(rho) <= 1e-9:
            return first(self.moments(mu, var)) ** 2
        return gs.bivariate(g, inner, mu, var, rho, self.kinks)


class PiecewiseLinear(Activation):
    """phi(x) = slope * x + intercept on each piece: exact truncated-normal moments."""

    def __init__(self, name: str, pieces: tuple[gs.Piece, ...]):
        self.pieces = pieces

        def f(x):
            out = np.zeros_like(np.asarray(x, dtype=float))
            for left, right, slope, icpt in pieces:
                sel = (x > left) & (x <= right)
                out = np.where(sel, slope * x + icpt, out)
            return out

        def df(x):
            out = np.zeros_like(np.asarray(x, dtype=float))
            for left, right, slope, _ in pieces:
                out = np.where((x > left) & (x <= right), slope, out)
            return out

        kinks = tuple(sorted({p[0] for p in pieces if math.isfinite(p[0])}))
        super().__init__(name, f, df, kinks, max(abs(p[2]) for p in pieces))

    def moments(self, mu: float, var: float) -> Moments:
        ef, ef2, edf, edf2 = gs.pl_moments(self.pieces, np.array([mu]), var)
        return Moments(float(ef[0]), float(ef2[0]), float(edf[0]), float(edf2[0]))

    def inner_f(self, cond_mu, cond_var):
        return gs.pl_moments(self.pieces, cond_mu, cond_var)[0]

    def inner_df(self, cond_mu, cond_var):
        return gs.pl_moments(self.pieces, cond_mu, cond_var)[2]

    def inner_moments(self, cond_mu, cond_var):
        return gs.pl_moments(self.pieces, cond_mu, cond_var)

    def cross_f(self, mu, var, rho):
        if self.name == "relu" and mu == 0.0 and 0.0 <= rho < 1.0:
            # arc-cosine kernel (Cho & Saul 2009): exact and cheap for the most common case
            theta = math.acos(rho)
            return var / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * rho)
        return super().cross_f(mu, var, rho)

    def cross_df(self, mu, var, rho):
        if self.name == "relu" and mu == 0.0 and -1.0 < rho < 1.0:
            return (math.pi - math.acos(rho)) / (2 * math.pi)
        return super().cross_df(mu, var, rho)


class ELUFamily(Activation):
    """scale * x for x > 0, scale * alpha * (exp(rate * x) - 1) below: ELU, CELU, SELU, exactly."""

    def __init__(self, name: str, alpha: float, scale: float = 1.0, rate: float = 1.0):
        self.alpha, self.scale, self.rate = alpha, scale, rate

        def f(x):
            x = np.asarray(x, dtype=float)
            return scale * np.where(x > 0, x, alpha * np.expm1(rate * np.minimum(x, 0.0)))

        def df(x):
            x = np.asarray(x, dtype=float)
            return scale * np.where(x > 0, 1.0, alpha * rate * np.exp(rate * np.minimum(x, 0.0)))

        super().__init__(name, f, df, (0.0,), scale * max(1.0, abs(alpha * rate)))

    @staticmethod
    def _exp_below_zero(k: float, mu, s: float):
        """E[exp(k X) 1(X < 0)] = exp(k mu + k^2 s^2 / 2) Phi(-(mu + k s^2) / s), without overflow."""
        mu = np.asarray(mu, dtype=float)
        if s == 0.0:
            return np.where(mu < 0, np.exp(k * mu), 0.0)
        log_scale = k * mu + 0.5 * k * k * s * s
        u = (mu + k * s * s) / (s * gs.SQRT2)  # Phi(-(..)/s) = erfc(u) / 2
        pos = u >= 0
        z = np.abs(u)
        t = 1.0 / (1.0 + 0.5 * z)
        poly = np.full_like(z, gs._ERFC[-1])
        for c in reversed(gs._ERFC[:-1]):
            poly = poly * t + c
        tail = 0.5 * t * np.exp(np.minimum(log_scale - z * z + poly, 700.0))  # erfc(u) for u >= 0
        body = np.exp(np.minimum(log_scale, 700.0)) * (1.0 - 0.5 * t * np.exp(-z * z + poly))  # u < 0
        return np.where(pos, tail, body)

    def _all(self, mu, var):
        mu = np.asarray(mu, dtype=float)
        s = math.sqrt(max(var, 0.0))
        a, lam, r = self.alpha, self.scale, self.rate
        pos = ((0.0, INF, 1.0, 0.0),)
        e_x, e_x2, p_pos, _ = gs.pl_moments(pos, mu, var)
        p_neg = 1.0 - p_pos
        e1 = self._exp_below_zero(r, mu, s)
        e2 = self._exp_below_zero(2 * r, mu, s)
        ef = lam * (e_x + a * (e1 - p_neg))
        ef2 = lam * lam * (e_x2 + a * a * (e2 - 2 * e1 + p_neg))
        edf = lam * (p_pos + a * r * e1)
        edf2 = lam * lam * (p_pos + a * a * r * r * e2)
        return ef, ef2, edf, edf2

    def moments(self, mu, var):
        ef, ef2, edf, edf2 = self._all(np.array([mu]), var)
        return Moments(float(ef[0]), float(ef2[0]), float(edf[0]), float(edf2[0]))

    def inner_f(self, cond_mu, cond_var):
        return self._all(cond_mu, cond_var)[0]

    def inner_df(self, cond_mu, cond_var):
        return self._all(cond_mu, cond_var)[2]

    def inner_moments(self, cond_mu, cond_var):
        return self._all(cond_mu, cond_var)


# -- the functions ------------------------------------------------------------------------------

def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def _dsigmoid(x):
    s = _sigmoid(x)
    return s * (1.0 - s)


def _softplus(beta: float) -> tuple[Fn, Fn]:
    return (lambda x: np.logaddexp(0.0, beta * np.asarray(x, dtype=float)) / beta,
            lambda x: _sigmoid(beta * np.asarray(x, dtype=float)))


def _gelu(approximate: str) -> tuple[Fn, Fn]:
    if approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)

        def f(x):
            return 0.5 * x * (1.0 + np.tanh(k * (x + 0.044715 * x ** 3)))

        def df(x):
            t = np.tanh(k * (x + 0.044715 * x ** 3))
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * x * x)

        return f, df
    return (lambda x: x * gs.norm_cdf(x), lambda x: gs.norm_cdf(x) + x * gs.norm_pdf(x))


def _mish(x):
    return x * np.tanh(np.logaddexp(0.0, x))


def _dmish(x):
    t = np.tanh(np.logaddexp(0.0, x))
    return t + x * (1.0 - t * t) * _sigmoid(x)


def _hardswish(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _dhardswish(x):
    return np.where(x < -3.0, 0.0, np.where(x > 3.0, 1.0, (2.0 * x + 3.0) / 6.0))


def _num(attrs: dict[str, Any], key: str, default: float) -> float:
    v = attrs.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _build(op: str, attrs: dict[str, Any]) -> Activation | None:
    if op == "identity":
        return PiecewiseLinear(op, ((-INF, INF, 1.0, 0.0),))
    if op == "relu":
        return PiecewiseLinear(op, ((-INF, 0.0, 0.0, 0.0), (0.0, INF, 1.0, 0.0)))
    if op in ("leaky_relu", "prelu"):
        a = _num(attrs, "slope", 0.01 if op == "leaky_relu" else 0.25)
        return PiecewiseLinear(op, ((-INF, 0.0, a, 0.0), (0.0, INF, 1.0, 0.0)))
    if op in ("relu6", "hardtanh"):
        lo = _num(attrs, "min_val", 0.0 if op == "relu6" else -1.0)
        hi = _num(attrs, "max_val", 6.0 if op == "relu6" else 1.0)
        return PiecewiseLinear(op, ((-INF, lo, 0.0, lo), (lo, hi, 1.0, 0.0), (hi, INF, 0.0, hi)))
    if op == "hardsigmoid":
        return PiecewiseLinear(op, ((-INF, -3.0, 0.0, 0.0), (-3.0, 3.0, 1 / 6, 0.5), (3.0, INF, 0.0, 1.0)))
    if op == "threshold":
        th, val = _num(attrs, "threshold", 0.0), _num(attrs, "value", 0.0)
        return PiecewiseLinear(op, ((-INF, th, 0.0, val), (th, INF, 1.0, 0.0)))
    if op == "softshrink":
        lam = _num(attrs, "lambd", 0.5)
        return PiecewiseLinear(op, ((-INF, -lam, 1.0, lam), (-lam, lam, 0.0, 0.0), (lam, INF, 1.0, -lam)))
    if op == "hardshrink":
        lam = _num(attrs, "lambd", 0.5)
        return PiecewiseLinear(op, ((-INF, -lam, 1.0, 0.0), (-lam, lam, 0.0, 0.0), (lam, INF, 1.0, 0.0)))
    if op == "elu":
        return ELUFamily(op, _num(attrs, "alpha", 1.0), _num(attrs, "scale", 1.0))
    if op == "celu":
        a = _num(attrs, "alpha", 1.0)
        return ELUFamily(op, a, 1.0, 1.0 / a)
    if op == "selu":
        return ELUFamily(op, SELU_ALPHA, SELU_SCALE)
    if op == "sigmoid":
        return Activation(op, _sigmoid, _dsigmoid, sup_df=0.25)
    if op == "tanh":
        return Activation(op, np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, sup_df=1.0)
    if op == "gelu":
        approx = attrs.get("approximate")
        f, df = _gelu(approx if isinstance(approx, str) else "none")
        return Activation(op, f, df)
    if op == "silu":
        return Activation(op, lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))))
    if op == "mish":
        return Activation(op, _mish, _dmish)
    if op == "hardswish":
        return Activation(op, _hardswish, _dhardswish, (-3.0, 3.0), sup_df=1.5)
    if op == "softplus":
        f, df = _softplus(_num(attrs, "beta", 1.0))
        return Activation(op, f, df, sup_df=1.0)
    if op == "softsign":
        return Activation(op, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2, (0.0,), sup_df=1.0)
    if op == "logsigmoid":
        return Activation(op, lambda x: -np.logaddexp(0.0, -x), lambda x: _sigmoid(-x), sup_df=1.0)
    if op == "tanhshrink":
        return Activation(op, lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2, sup_df=1.0)
    if op == "relu_squared":
        return Activation(op, lambda x: np.maximum(x, 0.0) ** 2, lambda x: 2 * np.maximum(x, 0.0), (0.0,), sup_df=INF)
    return None


# Attributes that change an activation's shape (others, like ``dim`` or ``inplace``, do not).
_SHAPE_ATTRS = ("slope", "min_val", "max_val", "threshold", "value", "lambd", "alpha", "scale", "beta",
                "approximate")


@lru_cache(maxsize=256)
def _cached(op: str, key: tuple) -> Activation | None:
    return _build(op, dict(key))


def get(op: str, attrs: dict[str, Any] | None = None) -> Activation | None:
    """The activation named ``op`` with its hyper-parameters, or None when we do not know it."""
    attrs = attrs or {}
    key = tuple(sorted((k, attrs[k]) for k in _SHAPE_ATTRS if isinstance(attrs.get(k), (int, float, str))))
    return _cached(op, key)

