"""``--verify --depth K``: estimate and measure a copy of the model with K of its repeated blocks
(same width), and say how well the two agree, for models too large to measure whole.

The copy's estimate is made the way the full model's was (from the meta twin's init laws and
formulas when the full model stayed on meta; from real weights when it was materialized), so the
agreement at depth K speaks for the method behind the full-depth estimate. The result is the
model report's ``depth_check``; the full model's own estimate and findings are unchanged, and the
GL3xx rules do not judge the copy.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any


def depth_check(run: Any) -> dict[str, Any]:
    from ..capture import capture_with_inputs
    from ..estimate.run import estimate_model
    from ..ir.errors import StageError
    from ..verify.distributed import active
    from ..verify.resources import DeviceError, resolve_device
    from ..verify.run import measure_model
    from ..verify.truncate import truncated_copy

    config, keep = run.config, run.config.depth
    try:
        device = active().device if active() is not None else resolve_device(config.device)
    except DeviceError as e:
        raise StageError("verify", str(e), None, "use --device cpu or --device auto") from None
    copy_built, blocks = truncated_copy(run.built, keep, device)
    kept = min(keep, blocks.count)
    estimated_from = copy_built
    if not run.built.materialized and copy_built.meta_model is not None:
        # the full model was estimated on meta: estimate the copy the same way
        estimated_from = dataclasses.replace(copy_built, model=copy_built.meta_model, materialized=False,
                                             init_laws=run.built.init_laws)
    graph, example = capture_with_inputs(estimated_from, run.loaded, config,
                                         "meta" if copy_built.meta_model is not None else "cpu")
    est = estimate_model(graph, estimated_from, run.loaded, example, config)
    m = measure_model(graph, copy_built, run.loaded, example, config)
    if m is None:
        raise StageError("verify", f"--depth {keep}: the copy has no weight layer to measure", None)
    measured = {lm.module: lm for lm in m.layers}
    layers, errors = [], []
    for ly in est.layers:
        lm = measured.get(ly.module)
        meas = lm.grad_ratio if lm is not None else None
        err = (abs(math.log10(ly.grad_ratio / meas)) if ly.grad_ratio and meas and ly.grad_ratio > 0 and meas > 0
               else None)
        if err is not None:
            errors.append(err)
        layers.append({"module": ly.module, "estimate": ly.grad_ratio, "measured": meas})
    thresholds = config.thresholds
    est_verdict = thresholds.verdict(est.attenuation, structural_zero=bool(est.zero_reason))
    out = {
        "blocks": blocks.container, "block_type": blocks.block_type, "kept": kept, "of": blocks.count,
        "parameters": copy_built.parameters,
        "estimated_attenuation": est.attenuation, "estimated_verdict": est_verdict,
        "measured_attenuation": m.attenuation, "measured_verdict": m.verdict,
        "verdicts_agree": est_verdict == m.verdict if m.verdict is not None else None,
        "attenuation_error_decades": (abs(math.log10(est.attenuation / m.attenuation))
                                      if est.attenuation and m.attenuation and est.attenuation > 0 and m.attenuation > 0
                                      else None),
        "median_layer_error_decades": statistics.median(errors) if errors else None,
        "max_layer_error_decades": max(errors) if errors else None,
        "layers": layers,
        "forward_backward_s": m.forward_backward_s, "peak_memory_bytes": m.peak_memory_bytes,
    }
    run.report.notes += [f"verify --depth {keep}: {n}" for n in m.notes]
    return out


def describe(check: dict[str, Any], full_estimate: float | None) -> str:
    """One line for the terminal."""
    def f(x: Any) -> str:
        return f"{x:.2e}" if isinstance(x, (int, float)) else "n/a"

    agree = {True: "agree", False: "DISAGREE", None: "n/a"}[check["verdicts_agree"]]
    text = (f"depth check: a copy with {check['kept']} of {check['of']} {check['block_type']} blocks "
            f"({check['parameters']:,} parameters) is estimated at {f(check['estimated_attenuation'])} "
            f"({check['estimated_verdict']}) and measures {f(check['measured_attenuation'])} "
            f"({check['measured_verdict']}): verdicts {agree}")
    if check["median_layer_error_decades"] is not None:
        text += (f"; per layer the estimate is off by {check['median_layer_error_decades']:.2f} decades (median), "
                 f"{check['max_layer_error_decades']:.2f} at most")
    if full_estimate is not None and check["of"] > check["kept"]:
        text += f"; the full {check['of']}-block estimate is {f(full_estimate)}"
    return text
