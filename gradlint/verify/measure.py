"""The measurement the JSON contract defines, shared by ``--verify`` and the benchmarks.

``grad_ratio`` of a layer = RMS of dL/dW over its weight tensors / the same at the last weight
layer, at initialization, in train mode, with a loss whose gradient at every output unit is an
independent standard Gaussian (a random projection of the outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class LayerGradient:
    module: str
    grad_norm: float  # L2 norm of dL/dW over the layer's weight tensors
    grad_rms: float  # that norm / sqrt(number of entries)
    numel: int


def projection_loss(outputs: Sequence[Any], seed: int, part: tuple[int, int] | None = None) -> Any:
    """sum_i <o_i, R_i> with R_i ~ N(0, 1): every output unit gets an error signal of scale 1.

    ``part`` = (rank, ranks): the outputs are this rank's rows of a batch split evenly across the
    ranks; R is drawn for the whole batch and this rank takes its rows, so the ranks' losses add
    up to the one-process loss of the whole batch.
    """
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed + 7919)
    total = None
    for o in outputs:
        if part is not None and part[1] > 1 and o.dim() > 0:
            rank, ranks = part
            rows = o.shape[0]
            r = torch.randn((rows * ranks, *o.shape[1:]), generator=gen, dtype=torch.float32)[rank * rows:(rank + 1) * rows]
        else:
            r = torch.randn(o.shape, generator=gen, dtype=torch.float32)
        r = r.to(device=o.device, dtype=o.dtype)
        term = (o * r).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("the model returned no floating-point tensor to take a gradient of")
    return total


def square_sum(t: Any) -> float:
    """sum(t**2) as a Python float; NaN or inf when ``t`` holds one.

    One float32 pass (no copy) when the result shows that no entry overflowed or underflowed
    when squared; otherwise the tensor is scaled by its largest magnitude first, so gradients of
    1e-30 (a deep sigmoid net) and of 1e30 are measured as exactly as gradients of 1.
    """
    import torch

    t = t.detach()
    if t.numel() == 0:
        return 0.0
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    n = float(torch.linalg.vector_norm(t))
    # entries below ~1e-19 vanish when squared in float32; past a norm of 1e-10 they cannot matter
    if math.isfinite(n) and (n > 1e-10 or t.dtype == torch.float64):
        return n * n
    lo, hi = torch.aminmax(t)
    amax = max(abs(float(lo)), abs(float(hi)))
    if not math.isfinite(amax) or amax == 0.0:
        return amax * amax  # nan, inf or 0
    return (float(torch.linalg.vector_norm(t / amax)) * amax) ** 2


def weight_gradients(model: Any, layers: Sequence[tuple[str, Sequence[str]]]) -> list[LayerGradient]:
    """Per layer (module name, canonical weight-parameter names) the gradient norm and RMS."""
    params = dict(model.named_parameters())
    out = []
    for module, names in layers:
        sq, n = 0.0, 0
        for name in names:
            p = params.get(name)
            if p is None:
                continue
            n += p.numel()
            if p.grad is not None:
                sq += square_sum(p.grad)
        norm = math.sqrt(sq)
        out.append(LayerGradient(module, norm, norm / math.sqrt(n) if n else 0.0, n))
    return out


def grad_ratios(grads: Sequence[LayerGradient]) -> list[float | None]:
    """Each layer's grad RMS relative to the last layer's (None when the last one is zero)."""
    if not grads:
        return []
    ref = grads[-1].grad_rms
    return [g.grad_rms / ref if ref > 0 else None for g in grads]


def measure(model: Any, args: tuple, kwargs: dict, layers: Sequence[tuple[str, Sequence[str]]], seed: int = 0,
            loss_fn: Any = None) -> list[LayerGradient]:
    """One forward and backward pass in train mode; gradients of the given layers."""
    import torch

    from ..capture.inputs import output_tensors

    model.train()
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        out = model(*args, **kwargs)
        loss = loss_fn(out) if loss_fn is not None else projection_loss(output_tensors(out), seed)
        loss.backward()
    return weight_gradients(model, layers)
