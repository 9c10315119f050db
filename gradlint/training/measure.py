"""``gradlint.measure(model, inputs, loss_fn=None)``: one measured forward/backward pass of the
model as the user holds it (plain, DDP-wrapped or sharded with FSDP2), inside the user's process
group, returning the same per-layer ``Measurement`` on every rank.

Each rank passes its own rows of the batch; every statistic is summed across the ranks
(``verify/distributed.py``). The default loss is the contract's random projection, drawn for the
whole batch so each rank's share adds up to it; DDP's and FSDP2's averaged gradients are scaled
back to sums over the whole batch, so a DDP or FSDP2 run with the batch split N ways gives the
numbers of one process with the whole batch (floating-point order aside). The model's training flags,
gradients and buffers are put back afterwards, and the caller's random state is untouched.
"""

from __future__ import annotations

from typing import Any, Callable

from ..ir.verdict import Thresholds
from ..verify.measurement import Measurement, summarize


def measure(model: Any, inputs: Any, loss_fn: Callable[..., Any] | None = None, *, seed: int = 0,
            group: Any = None, thresholds: Thresholds | None = None) -> Measurement:
    """Measure one forward/backward pass of ``model`` on ``inputs`` (a tensor, a tuple of
    positional inputs, a dict of keyword inputs, or ``(args, kwargs)``).

    ``loss_fn(output)`` (or ``loss_fn(output, *inputs)``) replaces the random projection. Raises
    ``ValueError`` with one line for a model wrapped in both DDP and FSDP, FSDP1, or a wrapped
    model without an initialized process group.
    """
    import torch.nn as nn

    from ..capture.inputs import normalize
    from ..verify.passes import run_pass
    from .layers import reducer_for, unwrap, weight_layers

    if not isinstance(model, nn.Module):
        raise TypeError(f"measure() needs an nn.Module, got {type(model).__name__}")
    inner, kind = unwrap(model)
    reducer = reducer_for(kind, group, as_sums=True)
    example = normalize(inputs, "inputs")
    layers = weight_layers(inner)
    device = _device_of(inner)
    m = run_pass(inner, example.args, dict(example.kwargs), layers, seed=seed, loss_fn=loss_fn,
                 loss_name=getattr(loss_fn, "__name__", "loss_fn") + "()" if loss_fn is not None else None,
                 device=device, input_source="inputs", thresholds=thresholds or Thresholds(), preserve_buffers=True,
                 reducer=reducer, forward_model=model)
    in_forward_order(m, thresholds or Thresholds())
    if reducer is not None:
        m.notes.append(f"measured across {reducer.world} ranks ({kind}, {reducer.backend}): statistics summed over "
                       "every rank's rows of the batch")
    return m


def in_forward_order(m: Measurement, thresholds: Thresholds) -> None:
    """Put the layers in the order the forward first called them (the contract's order: the last
    one is the reference of every ratio) and recompute ratios and the verdict."""
    order = m.call_order or {}
    m.layers.sort(key=lambda lm: order.get(lm.module, len(order)))
    last = m.layers[-1] if m.layers else None
    for lm in m.layers:
        lm.grad_ratio = (lm.grad_rms / last.grad_rms if last is not None and last.grad_rms and lm.grad_rms is not None
                         else None)
    m.attenuation, m.verdict = None, None
    m.notes = [n for n in m.notes if not n.startswith(("no non-embedding", "the last weight layer"))]
    summarize(m, thresholds)


def _device_of(model: Any) -> str:
    from ..verify.distributed import local

    p = next(iter(model.parameters()), None)
    return str(local(p).device) if p is not None else "cpu"
