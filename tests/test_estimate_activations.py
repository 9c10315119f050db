"""The activation expectations against docs/estimator.md's tables, closed forms and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradlint.ir.ops import ACTIVATIONS
from gradlint.estimate import activations as A

# docs/estimator.md, "Activation constants": max|phi'|, E[phi'^2], E[phi], E[phi^2]
TABLE = {
    "identity": (1, 1, 0, 1), "relu": (1, 0.5, 0.3989, 0.5), "leaky_relu": (1, 0.50005, 0.3949, 0.50005),
    "prelu": (1, 0.53125, 0.2992, 0.53125), "relu6": (1, 0.5, 0.3989, 0.5), "elu": (1, 0.6681, 0.1605, 0.6450),
    "selu": (1.7581, 1.0716, 0.0, 1.0), "gelu": (1.1289, 0.4559, 0.2821, 0.4252),
    "silu": (1.0998, 0.3795, 0.2066, 0.3558), "mish": (1.0885, 0.4791, 0.2404, 0.4523),
    "hardswish": (1.5, 0.3585, 0.1662, 0.3316), "tanh": (1, 0.4644, 0.0, 0.3943),
    "sigmoid": (0.25, 0.04484, 0.5, 0.2934), "hardtanh": (1, 0.6827, 0.0, 0.5161),
    "hardsigmoid": (1 / 6, 0.02770, 0.5, 0.2776), "softplus": (1, 0.2934, 0.8061, 0.9213),
    "softsign": (1, 0.2277, 0.0, 0.1830),
}
# "BN gain" column: E[phi'^2] / Var(phi) at q = 1
BN_GAIN = {"relu": 1.467, "leaky_relu": 1.453, "prelu": 1.203, "elu": 1.079, "selu": 1.072, "gelu": 1.319,
           "silu": 1.212, "mish": 1.214, "hardswish": 1.180, "tanh": 1.178, "sigmoid": 1.034, "hardtanh": 1.323,
           "hardsigmoid": 1.002, "softplus": 1.081, "softsign": 1.244}


def _close(a: float, b: float, digits: int = 4) -> bool:
    """Equal to the table's printed precision (4 significant digits, or 5e-5 absolute)."""
    return abs(a - b) <= max(5e-5, 0.6 * 10 ** (-digits) * abs(b) * 10)


@pytest.mark.parametrize("op", sorted(TABLE))
def test_constants_at_unit_variance(op):
    sup, edf2, ef, ef2 = TABLE[op]
    act = A.get(op)
    m = act.moments(0.0, 1.0)
    assert abs(act.sup_df - sup) < 1e-3, (op, act.sup_df)
    assert _close(m.edf2, edf2), (op, "E[phi'^2]", m.edf2)
    assert abs(m.ef - ef) < 2e-4, (op, "E[phi]", m.ef)
    assert _close(m.ef2, ef2), (op, "E[phi^2]", m.ef2)
    if op in BN_GAIN:
        assert abs(m.edf2 / (m.ef2 - m.ef ** 2) - BN_GAIN[op]) < 2e-3, op


# docs/estimator.md, "E[phi'^2] against q"
Q = (0.1, 0.25, 0.5, 1, 2, 4, 10)
DERIV_VS_Q = {  # as printed: the tolerance is half a unit of the last printed digit (plus rounding slack)
    "tanh": ".849 .717 .592 .464 .350 .256 .166",
    "sigmoid": ".0596 .0560 .0514 .0448 .0370 .0290 .0198",
    "softsign": ".492 .377 .297 .228 .170 .125 .082",
    "gelu": ".303 .356 .407 .456 .490 .506 .511",
    "silu": ".273 .300 .335 .379 .427 .466 .497",
    "elu": ".822 .762 .714 .668 .628 .594 .562",
    "selu": "1.547 1.361 1.213 1.072 .947 .844 .742",
}


@pytest.mark.parametrize("op", sorted(DERIV_VS_Q))
def test_derivative_gain_against_q(op):
    act = A.get(op)
    for q, text in zip(Q, DERIV_VS_Q[op].split()):
        expected = float(text)
        unit = 10.0 ** -len(text.split(".")[1])
        got = act.moments(0.0, q).edf2
        assert abs(got - expected) <= 0.6 * unit, (op, q, got, expected)


def test_closed_forms_of_the_sheet():
    s, q = 1.3, 1.69
    from gradlint.estimate.gaussian import (
        norm_cdf,  # erfc to 1.2e-7 relative: compare at 1e-6
    )

    assert abs(A.get("relu6").moments(0, q).edf2 - (norm_cdf(6 / s) - 0.5)) < 1e-6
    assert abs(A.get("hardtanh").moments(0, q).edf2 - (2 * norm_cdf(1 / s) - 1)) < 1e-6
    elu = 0.5 + math.exp(2 * q) * norm_cdf(-2 * s)
    assert abs(A.get("elu").moments(0, q).edf2 - elu) < 1e-6
    u = math.sqrt(1 + 2 * q)
    gelu = 0.25 + math.atan(q / u) / (2 * math.pi) + q / (2 * math.pi * u) * (1 / (1 + 2 * q) + (1 - q) / (1 + q) + 1)
    assert abs(A.get("gelu").moments(0, q).edf2 - gelu) < 1e-6


def test_every_captured_activation_has_a_model():
    missing = [op for op in ACTIVATIONS if op != "glu" and A.get(op) is None]
    assert not missing


def test_relu_bivariate_closed_form_matches_the_generic_quadrature():
    relu, leaky0 = A.get("relu"), A.get("leaky_relu", {"slope": 0.0})  # same function, generic path
    for rho in (0.0, 0.3, 0.8, 0.99):
        assert abs(relu.cross_f(0.0, 2.0, rho) - leaky0.cross_f(0.0, 2.0, rho)) < 1e-6
        assert abs(relu.cross_df(0.0, 2.0, rho) - leaky0.cross_df(0.0, 2.0, rho)) < 1e-4


@pytest.mark.parametrize("op", ["hardtanh", "sigmoid", "elu", "relu6", "gelu"])
def test_bivariate_against_monte_carlo(op):
    rng = np.random.default_rng(0)
    n, rho, mu, s = 400_000, 0.6, 0.3, 1.5
    u = rng.standard_normal(n)
    v = rho * u + math.sqrt(1 - rho * rho) * rng.standard_normal(n)
    act = A.get(op)
    fu, fv = act.f(mu + s * u), act.f(mu + s * v)
    du, dv = act.df(mu + s * u), act.df(mu + s * v)
    for got, samples in ((act.cross_f(mu, s * s, rho), fu * fv), (act.cross_df(mu, s * s, rho), du * dv)):
        se = samples.std() / math.sqrt(n)
        assert abs(got - samples.mean()) < 5 * se, (op, got, samples.mean(), se)


def test_nonzero_mean_matches_quadrature_for_exact_families():
    """The exact piecewise-linear and ELU formulas against brute-force quadrature at a mean."""
    xs = np.linspace(-40, 40, 800_001)
    for op in ("relu", "hardtanh", "elu", "selu", "hardsigmoid"):
        act = A.get(op)
        mu, var = -0.7, 2.5
        w = np.exp(-0.5 * (xs - mu) ** 2 / var)
        w /= w.sum()
        m = act.moments(mu, var)
        assert abs(m.ef2 - float(w @ act.f(xs) ** 2)) < 1e-4 * max(1, m.ef2), op
        assert abs(m.edf2 - float(w @ act.df(xs) ** 2)) < 1e-4, op
