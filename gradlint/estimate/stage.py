"""The estimate stage: the pipeline's plug-in (DEVELOPERS.md, "Plugging in a stage").

Runs the propagation on the captured graph, fills the contract's fields
(``layers[*].estimate.grad_ratio/bound``, ``summary.estimated_attenuation/verdict``) and leaves
the picture (chart, Mermaid flow) and the explanation in ``model_report.details`` for the
renderers and rules. Any failure becomes ``StageError("estimate", ...)`` (GL001).
"""

from __future__ import annotations

import math
from typing import Any

from ..ir.errors import StageError, one_line
from ..pipeline.records import LayerReport
from .signals import UNIT, Signal

VANISHING, HEALTHY, EXPLODING, STRUCTURAL_ZERO = "vanishing", "healthy", "exploding", "structural-zero"


def verdict(attenuation: float | None, zero_reason: str | None, vanishing: float, exploding: float) -> str | None:
    if zero_reason and (attenuation is None or attenuation == 0.0):
        return STRUCTURAL_ZERO
    if attenuation is None:
        return None
    if attenuation < vanishing:
        return VANISHING
    if attenuation > exploding:
        return EXPLODING
    return HEALTHY


def estimate_stage(ctx: Any, built: Any, loaded: Any, example: Any, model_report: Any, session: Any) -> None:
    from .propagate import estimate_graph
    from .weights import WeightSource

    config = session.config
    graph = ctx.graph
    try:
        weights = WeightSource(built.model, built.materialized, set(built.init_touched or ()),
                               getattr(built, "init_laws", None))
        batch, inputs, source = input_statistics(graph, built, loaded, example, config)
        est = estimate_graph(graph, weights, batch, inputs)
    except StageError:
        raise
    except Exception as e:  # noqa: BLE001 - an estimator bug must not hide the other findings
        from ..ir.errors import stage_error

        err = stage_error("estimate", e, hint="run with --debug for the traceback and report it")
        raise StageError("estimate", f"the estimator failed: {one_line(e)}", None, err.hint) from None
    ctx.estimate = est
    fill_report(model_report, est, config, graph, inputs_note=source)


estimate_stage.stage_name = "estimate"  # type: ignore[attr-defined]


def _json_float(x: float | None) -> float | None:
    """JSON has no inf/nan (the renderer is strict): clamp to the double range."""
    if x is None or math.isnan(x):
        return None
    return max(min(x, 1e308), -1e308)


def fill_report(model_report: Any, est: Any, config: Any, graph: Any, inputs_note: str = "") -> None:
    from ..report import chart
    from .explain import explanation_lines
    from .propagate import describe_unhandled

    model_report.layers = [
        LayerReport(ly.module, ly.type, ly.location,
                    estimate={"grad_ratio": _json_float(ly.grad_ratio), "bound": _json_float(ly.bound)})
        for ly in est.layers
    ]
    v = verdict(est.attenuation, est.zero_reason, config.vanishing_threshold, config.exploding_threshold)
    model_report.summary.estimated_attenuation = _json_float(est.attenuation)
    model_report.summary.verdict = v
    view = {
        "layers": [{"module": ly.module, "type": ly.type, "grad_ratio": ly.grad_ratio, "bound": ly.bound,
                    "naive": ly.naive, "zero": ly.zero, "unused": ly.unused, "embedding": ly.is_embedding,
                    "causes": dict(ly.causes)} for ly in est.layers],
        "flow": est.flow,
        "edges": dict(est.edge_gains),
        "unhandled": describe_unhandled(est.unhandled),
        "assumptions": list(est.assumptions),
        "verdict": v,
        "attenuation": est.attenuation,
        "thresholds": (config.vanishing_threshold, config.exploding_threshold),
        "bound_estimated": est.bound_estimated,
        "inputs": inputs_note,
    }
    model_report.details["estimate"] = view
    picture = chart.render_chart(view)
    sections = [picture] if picture else []
    sections += explanation_lines(view)
    model_report.details.setdefault("full_sections", []).append("\n".join(s for s in sections if s))
    if config.chart and picture:
        model_report.details.setdefault("concise_sections", []).append(picture)
    for line in view["unhandled"][:5]:
        model_report.notes.append(f"estimate: no model for {line}")
    last = est.layers[-1] if est.layers else None
    if last is not None and last.grad_ratio is None and not last.zero:
        # every ratio is relative to the last weight layer: say why there are none
        model_report.notes.append(f"estimate: no gradient reaches the last weight layer ({last.module}) in the "
                                  "captured graph, so no grad_ratio can be formed; please report the model")


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
        from ..pipeline.run import example_inputs_for

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
