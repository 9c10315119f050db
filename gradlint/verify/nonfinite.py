"""Where do non-finite values come from? Run only when the pass produced some.

A second forward, without gradients, checks every torch call: the first one that returns a NaN
or an infinity from finite inputs is the origin, reported at the user's line that made the call.
Checking every call costs a full read of every tensor, which is why the normal pass does not do
it. When the forward is finite throughout, the non-finite values arose in the backward (the
derivative of ``sqrt`` or ``log`` at 0, say); the caller then names the layers between which the
error signal turned non-finite.
"""

from __future__ import annotations

import sys
from typing import Any

from ..capture.tensors import tensors_in


def _all_finite(tensors: list) -> bool:
    import torch

    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point() or t.is_complex())


def find_forward_origin(model: Any, args: tuple, kwargs: dict, seed: int) -> dict[str, Any] | None:
    """{"what": description, "location": Location | None}, or None when the forward is finite."""
    import torch
    from torch.overrides import TorchFunctionMode

    from ..capture.kinds import call_name
    from ..ir.source import user_location

    for name, p in model.named_parameters():
        if not _all_finite([p.detach()]):
            return {"what": f"parameter {name} holds non-finite values at initialization", "location": None}
    inputs = tensors_in((args, kwargs), [])
    if not _all_finite(inputs):
        return {"what": "the example inputs hold non-finite values", "location": None}

    found: dict[str, Any] = {}

    class FirstNonFinite(TorchFunctionMode):
        def __torch_function__(self, func, types, fargs=(), fkwargs=None):
            fkwargs = fkwargs or {}
            out = func(*fargs, **fkwargs)
            if not found:
                outs = tensors_in(out, [])
                if outs and not _all_finite(outs) and _all_finite(tensors_in((fargs, fkwargs), [])):
                    found["what"] = f"{call_name(func)}() returned non-finite values from finite inputs"
                    found["location"] = user_location(sys._getframe(1))
            return out

    torch.manual_seed(seed)
    try:
        with torch.no_grad(), FirstNonFinite():
            model(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a diagnostic; the pass itself already ran this forward
        return None
    return found or None
