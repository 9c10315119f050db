"""``--tensorboard DIR``: the measurement as TensorBoard events, one run per model (DIR/<model>).

The step axis is depth: ``global_step`` = the weight layer's index in forward order, so the
scalar charts draw gradient magnitude against depth and the histogram dashboard's offset view
stacks the per-layer log10|g| histograms from input to output. Each layer also gets its own
histogram tag. Needs the tensorboard package (``pip install 'gradlint[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..verify.measurement import HIST_LOW, HIST_WIDTH, LayerMeasurement, Measurement


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def _histogram_raw(lm: LayerMeasurement) -> dict[str, Any] | None:
    """add_histogram_raw arguments for log10|g| of the layer's finite nonzero entries."""
    counts = lm.hist
    used = [i for i, c in enumerate(counts) if c]
    if not used:
        return None
    lo, hi = used[0], used[-1]
    centers = [HIST_LOW + (i + 0.5) * HIST_WIDTH for i in range(lo, hi + 1)]
    cs = counts[lo:hi + 1]
    num = sum(cs)
    return {
        "min": HIST_LOW + lo * HIST_WIDTH, "max": HIST_LOW + (hi + 1) * HIST_WIDTH, "num": num,
        "sum": sum(c * x for c, x in zip(cs, centers)), "sum_squares": sum(c * x * x for c, x in zip(cs, centers)),
        "bucket_limits": [HIST_LOW + (i + 1) * HIST_WIDTH for i in range(lo, hi + 1)], "bucket_counts": cs,
    }


def write_events(logdir: str, model_name: str, model_report: Any, m: Measurement) -> str:
    from torch.utils.tensorboard import SummaryWriter

    run_dir = str(Path(logdir) / _safe(model_name))
    writer = SummaryWriter(log_dir=run_dir)
    try:
        for i, (lm, lr) in enumerate(zip(m.layers, model_report.weight_layers)):
            if lm.grad_ratio is not None:
                writer.add_scalar("grad_ratio/measured", lm.grad_ratio, i)
            est = (lr.estimate or {}).get("grad_ratio")
            if est is not None:
                writer.add_scalar("grad_ratio/estimated", est, i)
            if lm.grad_norm is not None:
                writer.add_scalar("grad_norm/measured", lm.grad_norm, i)
            if lm.delta_norm is not None:
                writer.add_scalar("delta_norm/measured", lm.delta_norm, i)
            writer.add_scalar("zero_fraction/measured", lm.zero_fraction, i)
            raw = _histogram_raw(lm)
            if raw is not None:
                writer.add_histogram_raw("grad_log10_abs/by_depth", global_step=i, **raw)
                writer.add_histogram_raw(f"grad_log10_abs/{i:03d}_{lm.module}", global_step=0, **raw)
        rows = ["| # | layer | grad_ratio | grad_norm | zero % |", "|---|---|---|---|---|"]
        for i, lm in enumerate(m.layers):
            ratio = f"{lm.grad_ratio:.2e}" if lm.grad_ratio is not None else "-"
            norm = f"{lm.grad_norm:.2e}" if lm.grad_norm is not None else "-"
            rows.append(f"| {i} | {lm.module} | {ratio} | {norm} | {100 * lm.zero_fraction:.0f} |")
        writer.add_text("gradlint/summary", f"measured verdict: {m.verdict}, attenuation {m.attenuation}\n\n"
                        + "\n".join(rows), 0)
        writer.flush()
    finally:
        writer.close()
    return run_dir
