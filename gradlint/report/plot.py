"""``--plot FILE.png``: gradient magnitude against depth (estimated and measured on one log axis)
and a grid of per-layer gradient histograms. Needs matplotlib (``pip install 'gradlint[plot]'``).

Drawn with matplotlib's object API and the Agg canvas, never ``pyplot``: no global backend is
switched, so calling the Python API from a notebook leaves its plotting setup alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..verify.measurement import HIST_LOW, HIST_WIDTH, LayerMeasurement, Measurement

MAX_HISTOGRAMS = 24  # a deeper model shows evenly spaced layers, first and last included


def plot_path(base: str, model_name: str, index: int) -> str:
    """The first model of a run writes FILE.png; later ones FILE-<model>.png beside it."""
    if index == 0:
        return base
    p = Path(base)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
    return str(p.with_name(f"{p.stem}-{safe}{p.suffix or '.png'}"))


def _picked(n: int) -> list[int]:
    if n <= MAX_HISTOGRAMS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_HISTOGRAMS - 1)) for i in range(MAX_HISTOGRAMS)})


def _occupied_range(layers: list[LayerMeasurement]) -> tuple[float, float]:
    """log10|g| range holding every layer's nonzero entries (one x axis for all histograms)."""
    lo, hi = None, None
    for lm in layers:
        for i, c in enumerate(lm.hist):
            if c:
                lo = i if lo is None else min(lo, i)
                hi = i if hi is None else max(hi, i)
    if lo is None:
        return -8.0, 1.0
    return HIST_LOW + lo * HIST_WIDTH - 0.5, HIST_LOW + (hi + 1) * HIST_WIDTH + 0.5


def write_plot(path: str, model_report: Any, m: Measurement) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = m.layers
    picked = _picked(len(layers))
    cols = min(6, max(1, len(picked)))
    rows = math.ceil(len(picked) / cols)
    fig = Figure(figsize=(3.0 * cols if cols > 2 else 9.0, 4.2 + 2.1 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[2.2] + [1.0] * rows)
    _depth_panel(fig.add_subplot(grid[0, :]), model_report, m)
    lo, hi = _occupied_range(layers)
    edges = [HIST_LOW + i * HIST_WIDTH for i in range(len(layers[0].hist) + 1)] if layers else []
    centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    for k, idx in enumerate(picked):
        ax = fig.add_subplot(grid[1 + k // cols, k % cols])
        _histogram(ax, idx, layers[idx], centers, lo, hi)
        if k % cols == 0:
            ax.set_ylabel("share of entries", fontsize=6)
    fig.suptitle(f"gradlint --verify: {model_report.target}", fontsize=10)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def _depth_panel(ax: Any, model_report: Any, m: Measurement) -> None:
    x = list(range(len(m.layers)))
    meas = [lm.grad_ratio if lm.grad_ratio and lm.grad_ratio > 0 else None for lm in m.layers]
    est = []
    for lr in model_report.weight_layers:
        e = (lr.estimate or {}).get("grad_ratio")
        est.append(e if e and e > 0 else None)
    ax.set_yscale("log")
    if any(v is not None for v in est) and len(est) == len(x):
        ax.plot(x, [v if v is not None else math.nan for v in est], "--", color="tab:gray", marker=".",
                label="estimated (static)")
    ax.plot(x, [v if v is not None else math.nan for v in meas], "-", color="tab:blue", marker="o", markersize=4,
            label="measured (one batch)")
    finite = [v for v in meas + est if v is not None]
    floor = min(finite) / 10 if finite else 1e-3
    for structural, label, color in ((True, "exactly zero: zero-initialized weight downstream", "tab:purple"),
                                     (False, "exactly zero gradient", "tab:red")):
        zeros = [i for i, lm in enumerate(m.layers) if lm.grad_norm == 0.0 and lm.structural_zero == structural]
        if zeros:
            ax.plot(zeros, [floor] * len(zeros), "v", color=color, markersize=8, label=label)
    bad = [i for i, lm in enumerate(m.layers) if lm.nonfinite]
    if bad:
        ax.plot(bad, [floor] * len(bad), "x", color="tab:red", markersize=8, label="non-finite gradient")
    vanishing, exploding = m.thresholds.vanishing, m.thresholds.exploding
    ax.axhline(vanishing, color="tab:orange", lw=0.8, ls=":", label=f"vanishing threshold ({vanishing:g})")
    if any(v is not None and v > exploding / 10 for v in meas + est):
        ax.axhline(exploding, color="tab:red", lw=0.8, ls=":", label=f"exploding threshold ({exploding:g})")
    verdict = m.verdict or "n/a"
    att = f"{m.attenuation:.1e}" if m.attenuation is not None else "n/a"
    ax.set_title(f"gradient RMS relative to the last layer, by depth — measured attenuation {att} ({verdict})",
                 fontsize=9)
    ax.set_xlabel("weight layer (forward order: input → output)")
    ax.set_ylabel("grad_ratio (log)")
    if len(x) <= 30:
        ax.set_xticks(x, [lm.module for lm in m.layers], rotation=60, ha="right", fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _histogram(ax: Any, idx: int, lm: LayerMeasurement, centers: list[float], lo: float, hi: float) -> None:
    """Positive entries above the axis, negative below: the shape shows a collapsed peak or a
    one-signed layer at a glance."""
    neg = lm.hist_negative
    pos = [a - b for a, b in zip(lm.hist, neg)]
    n = max(lm.numel, 1)
    ax.bar(centers, [c / n for c in pos], width=HIST_WIDTH, color="tab:blue", linewidth=0)
    ax.bar(centers, [-c / n for c in neg], width=HIST_WIDTH, color="tab:red", linewidth=0)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlim(lo, hi)
    if not any(lm.hist):
        empty = "no finite nonzero entry" if lm.nonfinite else "every entry is exactly 0"
        ax.text(0.5, 0.72, empty, transform=ax.transAxes, ha="center", va="center", fontsize=7, color="dimgray")
    flags = []
    if lm.zeros:
        flags.append(f"{100 * lm.zero_fraction:.0f}% zero")
    if lm.nonfinite:
        flags.append(f"{lm.nonfinite} non-finite")
    title = f"{idx}: {lm.module}" + (f" ({', '.join(flags)})" if flags else "")
    ax.set_title(title if len(title) < 42 else title[:40] + "…", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_xlabel("log10 |dL/dW|  (blue > 0, red < 0)", fontsize=6)
