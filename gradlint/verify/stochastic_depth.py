"""Stochastic depth (drop path) is off for the measured pass.

Stochastic depth drops whole residual branches per sample: torchvision's
``torchvision.ops.StochasticDepth`` (ConvNeXt, EfficientNet, Swin), timm's ``DropPath``, Hugging
Face's ``ConvNextDropPath``/``SwinDropPath``/... With the small batch of one measured pass a deep
branch is often dropped for every sample, so its layers get an exactly-zero gradient that says
nothing about the architecture (a GL305 false alarm) and the measured attenuation depends on the
dice. The pass therefore puts these modules in eval mode (identity, as at inference) while
everything else stays in train mode (BatchNorm batch statistics, elementwise Dropout); the
estimate models them as identity too (``capture/kinds.py``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from ..capture.kinds import is_stochastic_depth
from ..load.build import set_training

@contextlib.contextmanager
def stochastic_depth_off(model: Any) -> Iterator[int]:
    """Put the model's stochastic-depth modules in eval mode (identity) for the block; yields how
    many there are and puts each one's mode back afterwards."""
    found = [m for m in model.modules() if is_stochastic_depth(m)]
    saved = [(m, m.training) for m in found]
    try:
        for m in found:
            set_training(m, False)
        yield len(found)
    finally:
        for m, flag in saved:
            m.training = flag
