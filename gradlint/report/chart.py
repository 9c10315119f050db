"""The picture gradlint started from: gradient magnitude against depth, output to input, on a log
scale, in the terminal (``--format full`` and ``--chart``). Plain ASCII, so it survives any
terminal encoding and CI log.

Reads the report's estimate (plain data), never the graph: it also works on cached results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WIDTH = 44  # bar columns
MAX_ROWS = 40  # deeper models show evenly spaced layers (first, last and threshold crossings kept)


def _rows(layers: list[Any], vanishing: float, exploding: float) -> list[int]:
    n = len(layers)
    if n <= MAX_ROWS:
        return list(range(n))
    keep = {0, n - 1}
    for i in range(1, n):  # where the ratio crosses a threshold
        a, b = layers[i - 1].grad_ratio, layers[i].grad_ratio
        if a is not None and b is not None and ((a < vanishing) != (b < vanishing) or (a > exploding) != (b > exploding)):
            keep.update({i - 1, i})
    step = (n - 1) / (MAX_ROWS - len(keep) - 1) if MAX_ROWS - len(keep) > 1 else n
    x = 0.0
    while x < n:
        keep.add(int(round(x)))
        x += step
    return sorted(i for i in keep if 0 <= i < n)


@dataclass
class Row:
    """One bar: a layer and its gradient ratio (the estimate's layers, or a fix's prediction)."""

    module: str
    grad_ratio: float | None
    zero: str | None = None
    unused: bool = False


def render_chart(model: Any) -> str:
    """The chart of a ``ModelReport``'s estimate ('' when it has none)."""
    layers = model.estimate.layers if model.estimate is not None else []
    return draw(layers, model.thresholds)


def render_chart_after(model: Any, fix: Any) -> str:
    """The chart the estimate predicts after ``fix`` (its per-layer ratios; same layers)."""
    layers = model.estimate.layers if model.estimate is not None else []
    if not fix.ratios or len(fix.ratios) != len(layers):
        return ""
    rows = [Row(ly.module, r, None if r else ly.zero, ly.unused) for ly, r in zip(layers, fix.ratios)]
    return draw(rows, model.thresholds)


def draw(layers: list[Any], thresholds: Any) -> str:
    """Bars for rows with ``module``, ``grad_ratio``, ``zero`` and ``unused``."""
    vals = [ly.grad_ratio for ly in layers]
    logs = [math.log10(v) for v in vals if v is not None and v > 0 and math.isfinite(v)]
    if not logs:
        return ""
    vanishing, exploding = thresholds.vanishing, thresholds.exploding
    lo = min(min(logs), 0.0)
    hi = max(max(logs), 0.0)
    lv, le = math.log10(vanishing), math.log10(exploding)
    if lv > lo - 1 and lv < hi + 3:
        lo = min(lo, lv)
    if le < hi + 1 and le > lo - 3:
        hi = max(hi, le)
    lo, hi = math.floor(lo), math.ceil(hi)
    if hi - lo < 1:
        lo = hi - 1

    def col(lg: float) -> int:
        return int(round((lg - lo) / (hi - lo) * (WIDTH - 1)))

    marks = {}
    if lo <= lv <= hi:
        marks[col(lv)] = ":"
    if lo <= le <= hi:
        marks[col(le)] = ":"
    rows = _rows(layers, vanishing, exploding)
    names = [layers[i].module for i in rows]
    name_w = min(max((len(s) for s in names), default=5), 28)
    idx_w = len(str(len(layers) - 1))
    out = ["   gradient RMS per weight layer, relative to the last one (log scale; output at the top, input at the bottom)"]
    previous = None
    for i in reversed(rows):
        if previous is not None and previous - i > 1:
            out.append(f"   {'':>{idx_w}}  {'...':<{name_w}}")
        previous = i
        ly = layers[i]
        v = ly.grad_ratio
        name = ly.module if len(ly.module) <= name_w else "..." + ly.module[-(name_w - 3):]
        if v is None:
            bar = " " * WIDTH
            text = "    -    "
        elif v == 0.0:
            bar = " " * WIDTH
            text = "   0     "
        else:
            n = col(math.log10(v)) + 1 if v > 0 else 0
            cells = ["#" if c < n else " " for c in range(WIDTH)]
            for c, m in marks.items():
                if cells[c] == " ":
                    cells[c] = m
            bar = "".join(cells)
            text = f"{v:9.1e}"
        tag = ""
        if ly.zero:
            tag = "  structural zero"
        elif ly.unused:
            tag = "  (no path to the output)"
        out.append(f"   {i:>{idx_w}}  {name:<{name_w}} {text} |{bar}|{tag}")
    ticks = []
    for lg in sorted({lo, hi, 0} | ({round(lv)} if lo <= lv <= hi else set()) | ({round(le)} if lo <= le <= hi else set())):
        c = col(lg) + 1
        label = f"1e{lg:+d}" if lg else "1"
        ticks.append((c, label))
    line = [" "] * (WIDTH + 12)
    for c, label in ticks:
        start = max(0, min(c - len(label) // 2, len(line) - len(label)))
        if all(ch == " " for ch in line[max(0, start - 1): start + len(label) + 1]):
            line[start:start + len(label)] = list(label)
    pad = " " * (3 + idx_w + 2 + name_w + 1 + 9 + 1)
    out.append(pad + "".join(line).rstrip())
    notes = []
    if lo <= lv <= hi or lo <= le <= hi:
        notes.append(f"':' marks the thresholds ({vanishing:g} vanishing, {exploding:g} exploding)")
    if len(rows) < len(layers):
        notes.append(f"{len(rows)} of {len(layers)} layers shown")
    if notes:
        out.append("   " + "; ".join(notes))
    return "\n".join(out)
