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
import re
import sys
from typing import Any, Iterator

# timm DropPath, Hugging Face *DropPath (ConvNextDropPath, SwinDropPath, BeitDropPath, ...),
# torchvision StochasticDepth, and the usual spellings in user code.
_NAME = re.compile(r"drop_?path|stochastic_?depth", re.IGNORECASE)


def is_stochastic_depth(module: Any) -> bool:
    """A stochastic-depth / drop-path module: torchvision's ``StochasticDepth``, or a class whose
    name says DropPath or StochasticDepth and that holds no weights of its own."""
    tv_ops = sys.modules.get("torchvision.ops")
    cls = getattr(tv_ops, "StochasticDepth", None) if tv_ops is not None else None
    if isinstance(cls, type) and isinstance(module, cls):
        return True
    if not _NAME.search(type(module).__name__):
        return False
    return next(iter(module.parameters()), None) is None  # a block named "...DropPath..." with layers is not one


@contextlib.contextmanager
def stochastic_depth_off(model: Any) -> Iterator[int]:
    """Put the model's stochastic-depth modules in eval mode (identity) for the block; yields how
    many there are and puts each one's mode back afterwards."""
    found = [m for m in model.modules() if is_stochastic_depth(m)]
    saved = [(m, m.training) for m in found]
    try:
        for m in found:
            m.train(False)
        yield len(found)
    finally:
        for m, flag in saved:
            m.training = flag
