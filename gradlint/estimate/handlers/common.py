"""Helpers shared by handlers: the common shapes of a backward pass."""

from __future__ import annotations

from typing import Callable

from ..signals import Grad


def gains(*per_input: float, rho: Callable[[float], float] | None = None) -> Callable[[Grad], list[Grad]]:
    """A backward pass that scales the gradient by a fixed gain for each input."""

    def backward(grad: Grad) -> list[Grad]:
        r = rho(grad.rho) if rho is not None else grad.rho
        return [Grad(grad.g * k, min(max(r, 0.0), 1.0)) for k in per_input]

    return backward


def first_only(n_inputs: int, gain: float, rho: Callable[[float], float] | None = None) -> Callable[[Grad], list[Grad]]:
    """Gain on the first input; the others (masks, indices) receive no gradient."""
    return gains(gain, *([0.0] * (n_inputs - 1)), rho=rho)


def clip01(x: float) -> float:
    return min(max(x, 0.0), 1.0)
