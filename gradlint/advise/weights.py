"""Weight statistics with some parameters re-initialized: what the estimate would read after an
init fix. Everything not overridden comes from the model's own ``WeightSource``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..estimate.weights import TensorStats, fan_in


@dataclass(frozen=True)
class InitScheme:
    """A re-initialization of weight tensors, as ``torch.nn.init`` draws it.

    ``law``: ``kaiming_normal`` (std gain/sqrt(fan_in)), ``xavier_normal`` (std
    gain*sqrt(2/(fan_in+fan_out))), ``orthogonal`` (a semi-orthogonal matrix times gain: E[w^2] =
    gain^2/max(rows, cols)) or ``scaled_normal`` (std gain/sqrt(fan_in), any gain). Biases become 0.
    """

    law: str
    gain: float
    nonlinearity: str = ""  # what the gain was chosen for (for titles and the codemod)
    slope: float = 0.0  # leaky_relu's negative slope (kaiming_normal_'s ``a``)

    def second_moment(self, shape: tuple[int, ...]) -> float:
        rows = shape[0] if shape else 1
        n_in = fan_in(shape)
        cols = max(1, math.prod(shape) // max(rows, 1)) if shape else 1
        fan_out = rows * (math.prod(shape[2:]) if len(shape) > 2 else 1)
        g2 = self.gain * self.gain
        if self.law == "xavier_normal":
            return g2 * 2.0 / (n_in + fan_out)
        if self.law == "orthogonal":
            return g2 / max(rows, cols)
        return g2 / max(n_in, 1)  # kaiming_normal, scaled_normal

    def describe(self) -> str:
        if self.law == "kaiming_normal":
            return f"He (kaiming_normal_, {self.nonlinearity or 'relu'})"
        if self.law == "xavier_normal":
            return f"Xavier (xavier_normal_, gain {self.gain:.3g} for {self.nonlinearity})"
        if self.law == "orthogonal":
            return f"orthogonal (gain {self.gain:.3g} for {self.nonlinearity})"
        return f"variance-scaled N(0, ({self.gain:.3g})^2/fan_in)"


def reinit_overrides(weights: Any, params: dict[str, str], scheme: InitScheme) -> dict[str, TensorStats]:
    """Statistics of each re-initialized parameter: ``params`` maps a canonical parameter name to
    its role, ``weight`` (drawn from the scheme), ``head`` (unit gain: N(0, 1/fan_in)) or ``bias`` (zeros)."""
    out = {}
    for name, role in params.items():
        shape = tuple(weights.shape(name))
        if role == "bias":
            out[name] = TensorStats(shape, 0.0, 0.0, True, False, "zeros_ (gradlint fix)")
        elif role == "head":
            out[name] = TensorStats(shape, 1.0 / max(fan_in(shape), 1), 0.0, False, False,
                                    "N(0, 1/fan_in) (gradlint fix, output layer)")
        else:
            out[name] = TensorStats(shape, scheme.second_moment(shape), 0.0, False, False,
                                    f"{scheme.describe()} (gradlint fix)")
    return out
