"""Finding the tensors inside the values models take and return.

Models return tensors, tuples, lists, dicts, Hugging Face ``ModelOutput``s (dicts with a
``to_tuple``), namedtuples and dataclasses; every stage that follows tensors (capture, the
estimator's inputs, the verify pass) walks them the same way, here.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def tensors_in(obj: Any, out: list | None = None) -> list:
    """Every tensor inside ``obj``, in order (depth first)."""
    import torch

    out = [] if out is None else out
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            tensors_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            tensors_in(o, out)
    elif hasattr(obj, "to_tuple") and callable(obj.to_tuple):  # transformers ModelOutput
        tensors_in(obj.to_tuple(), out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            tensors_in(getattr(obj, f.name), out)
    return out


def output_tensors(output: Any) -> list:
    """The floating-point tensors of a model's output: what a loss can be taken of."""
    return [t for t in tensors_in(output) if t.is_floating_point()]
