"""The estimator's entry point: a captured graph and the built model in, an ``Estimate`` out.

Weight statistics come from the tensors when the model is materialized, else from the recorded
init laws and PyTorch's formulas (``weights.py``); input statistics from the example inputs on the
CPU when they can be made, else N(0, 1). The pipeline's estimate stage records the result in the
report. Any failure is ``StageError("estimate", ...)`` (GL001). The formulas: docs/estimator.md.
"""

from __future__ import annotations

from typing import Any

from ..ir.errors import StageError, one_line, stage_error
from .signals import UNIT, Signal


def estimate_model(graph: Any, built: Any, loaded: Any, example: Any, config: Any) -> Any:
    """The estimate (``propagate.Estimate``) of a built model's captured graph."""
    from .propagate import estimate_graph
    from .weights import WeightSource

    try:
        weights = WeightSource(built.model, built.materialized, set(built.init_touched or ()),
                               getattr(built, "init_laws", None))
        batch, inputs, source = input_statistics(graph, built, loaded, example, config)
        est = estimate_graph(graph, weights, batch, inputs)
        if est.zero_sources:
            from .zero_init import unresolved_zero_weights

            est.unresolved_zeros = unresolved_zero_weights(graph, weights, batch, inputs, est)
    except StageError:
        raise
    except Exception as e:  # noqa: BLE001 - an estimator bug must not hide the other findings
        err = stage_error("estimate", e, hint="run with --debug for the traceback and report it")
        raise StageError("estimate", f"the estimator failed: {one_line(e)}", None, err.hint) from None
    est.inputs = source
    return est


# -- example inputs -------------------------------------------------------------------------------

def input_statistics(graph: Any, built: Any, loaded: Any, example: Any, config: Any) -> tuple[int, dict[int, Signal], str]:
    """(batch size, statistics of each float input node, a note on where they came from).

    The batch is the first dimension of the example inputs. Values come from the inputs on the
    CPU when they can be made (the capture ran on meta tensors); else inputs are taken as N(0, 1).
    """
    tensors = _flat_tensors(example)
    batch = int(tensors[0].shape[0]) if tensors and tensors[0].dim() > 0 else 1
    real = None
    try:
        from ..capture.inputs import example_inputs_for

        if sum(int(t.numel()) for t in tensors) <= 50_000_000:
            real = _flat_tensors(example_inputs_for(built, loaded, config, "cpu"))
    except Exception:  # noqa: BLE001 - user code: fall back to N(0, 1)
        real = None
    stats: dict[int, Signal] = {}
    note = "inputs taken as N(0, 1)"
    if real:
        pool = list(real)
        for node in graph.inputs:
            if not node.attrs.get("float", True):
                continue
            index = next((i for i, t in enumerate(pool) if tuple(t.shape) == tuple(node.out_shape or ())), None)
            if index is None:
                continue
            match = pool.pop(index)  # by position: list.remove would compare tensors elementwise
            stats[node.id] = tensor_signal(match, channels_first=_conv_consumer(graph, node.id))
        note = "input statistics from the example inputs"
    for node in graph.inputs:
        if node.attrs.get("float", True) and node.id not in stats:
            stats[node.id] = UNIT
    return batch, stats, note


def _flat_tensors(example: Any) -> list:
    from ..capture.tensors import tensors_in

    return tensors_in((tuple(example.args), dict(example.kwargs))) if example is not None else []


def _conv_consumer(graph: Any, node_id: int) -> bool:
    from ..ir import graph as g

    return any(n.kind in (g.CONV, g.CONV_TRANSPOSE) or (n.kind == g.NORM and n.op in ("batch_norm", "group_norm"))
               for n in graph if node_id in n.inputs)


def tensor_signal(t: Any, channels_first: bool) -> Signal:
    """m, mu, c (per-channel constant across samples), p (shared across positions) of a tensor."""
    import torch

    with torch.no_grad():
        x = t.detach().double()
        if x.numel() == 0 or not torch.is_floating_point(t):
            return UNIT
        m, mu = float(x.pow(2).mean()), float(x.mean())
        if x.dim() < 2:
            return Signal(m, mu, mu * mu, mu * mu)
        ch = 1 if (channels_first and x.dim() >= 3) else x.dim() - 1
        per_ch = x.transpose(ch, -1).reshape(-1, x.shape[ch])
        c = float(per_ch.mean(0).pow(2).mean())
        if x.dim() >= 3:
            xs = x.transpose(ch, -1).reshape(x.shape[0], -1, x.shape[ch])
            p = float(xs.mean(1).pow(2).mean())
        else:
            p = c
        # with few samples a noise input's batch means are not zero: remove that sampling noise
        n_per_c = per_ch.shape[0]
        c = max(c - (m - mu * mu) / n_per_c, mu * mu)
        if x.dim() >= 3:
            p = max(p - (m - mu * mu) / max(xs.shape[1], 1), c)
            # a pattern shared by the samples: per (channel, position) batch means beyond the constant
            s = float(x.mean(0).pow(2).mean()) - (m - mu * mu) / max(x.shape[0], 1) - c
        else:
            p, s = c, 0.0
    return Signal(m, mu, c, p, max(s, 0.0)).clean()
