"""Terminal output: ``path:line:col: GL101 message`` lines and a summary line (concise), and for
``--format full`` per model the layer table, the gradient-against-depth chart and why."""

from __future__ import annotations

import json
import math
from typing import IO

from ..pipeline.records import ModelReport, Report
from .chart import render_chart


def finding_line(f, fallback_path: str) -> str:
    """``path:line:col: GL101 message``; a note (severity info) says so before its message."""
    loc = f.location
    where = f"{loc.path}:{loc.line}:{loc.column}" if loc else f"{fallback_path}:1:1"
    return f"{where}: {f.code} {'' if f.is_problem else 'note: '}{f.message}"


def summary_line(report: Report, notes_shown: bool = True) -> str:
    """Problems (errors and warnings) are counted; notes are mentioned, and ``notes_shown=False``
    says how to see them."""
    n = len(report.problems)
    models = len(report.models)
    failed = sum(m.status == "failed" for m in report.models)
    not_built = sum(m.status == "not-built" for m in report.models)
    with_problems = sum(any(f.is_problem for f in m.findings) for m in report.models)
    if models == 0:
        return "No models analyzed."
    model_word = "model" if models == 1 else "models"
    reasons = [f"{failed} could not be analyzed"] if failed else []
    reasons += [f"{not_built} not built: see GL002"] if not_built else []
    fail_txt = f" ({'; '.join(reasons)})" if reasons else ""
    notes = len(report.notes)
    note_txt = ""
    if notes:
        note_txt = f" {notes} note{'s' if notes != 1 else ''}" + ("" if notes_shown else " (--show-notes to list)") + "."
    if n == 0:
        return f"All checks passed: {models} {model_word} analyzed{fail_txt}.{note_txt}"
    prob = "problem" if n == 1 else "problems"
    return f"Found {n} {prob} in {with_problems} of {models} {model_word}{fail_txt}.{note_txt}"


def fix_table(fixes, indent: str = "    ") -> list[str]:
    """The ranked fixes of a finding: what changes, the predicted attenuation and verdict after it,
    and whether --fix may apply it (safe), --unsafe-fixes may (unsafe), or it is described only (manual)."""
    if not fixes:
        return []
    width = min(max(len(fx.title) for fx in fixes), 70)
    lines = [f"{indent}fixes, best first (predicted attenuation after the change):"]
    for i, fx in enumerate(fixes, 1):
        att = _fmt(fx.predicted_attenuation)
        title = fx.title if len(fx.title) <= width else fx.title[: width - 3] + "..."
        mark = "  [applied]" if fx.applied else ""
        lines.append(f"{indent}  {i}. {title:<{width}}  -> {att} {fx.predicted_verdict or '-':<9} "
                     f"{fx.applicability}{mark}")
    for i, fx in enumerate(fixes, 1):
        if "Caution: " in fx.detail:
            lines.append(f"{indent}  {i}. caution: {fx.detail.split('Caution: ', 1)[1]}")
    manual = [fx for fx in fixes if fx.applicability == "manual" and fx.detail]
    for fx in manual[:2]:
        lines.append(f"{indent}  manual ({fx.title}): {fx.detail}")
    return lines


def render_concise(report: Report, out: IO[str], show_fixes: bool = False, chart: bool = False,
                   show_notes: bool = False) -> None:
    for m in report.models:
        shown = None  # a model's findings share its fixes: the table once, under the first
        for f in m.findings:
            if not (f.is_problem or show_notes):
                continue
            out.write(finding_line(f, m.path) + "\n")
            if show_fixes and f.fixes:
                if shown is None or [x.title for x in f.fixes] != shown:
                    out.writelines(line + "\n" for line in fix_table(f.fixes))
                    shown = [x.title for x in f.fixes]
                else:
                    out.write(f"    fixes: as above (best: {f.fixes[0].title})\n")
            elif show_fixes and f.fix:
                out.write(f"    fix: {f.fix}\n")
        # --chart: the gradient-vs-depth picture, indented so problem matchers skip it
        picture = render_chart(m) if chart else ""
        if picture:
            out.write(f"{m.target}:\n" + picture.rstrip("\n") + "\n")
    out.write(summary_line(report, notes_shown=show_notes) + "\n")


def render_json(report: Report, out: IO[str]) -> None:
    json.dump(report.to_json(), out, indent=2, allow_nan=False, default=_json_default)
    out.write("\n")


def _json_default(o):  # numpy floats and the like
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2e}"


def verify_line(v) -> str:
    """The measured pass in one line: where, with what, how long, how much memory."""
    mem = f", peak memory +{v.peak_memory_bytes / 2**20:.0f} MiB" if v.peak_memory_bytes is not None else ""
    return (f"   verify: one pass on {v.device}, inputs {v.input_source}, loss {v.loss}: forward+backward "
            f"{v.forward_backward_s:.2f} s, statistics {v.statistics_s:.2f} s{mem}")


def render_full(report: Report, out: IO[str]) -> None:
    """Findings with their fixes, then per model: capture, the layer table and notes."""
    for m in report.models:
        out.write(f"== {m.target} [{m.status}{', ' + m.capture if m.capture else ''}]\n")
        if m.error:
            out.write(f"   {m.error['stage']} failed: {m.error['message']}\n")
        info = []
        if m.depth is not None:
            info.append(f"depth {m.depth} weight layers (shortest path {m.shortest_depth})")
        if m.parameters is not None:
            info.append(f"{m.parameters:,} parameters" + ("" if m.materialized else ", meta device"))
        if m.input_source:
            info.append(f"inputs {m.input_source}")
        if m.cached:
            info.append("from the cache")
        if info:
            out.write("   " + "; ".join(info) + "\n")
        if m.summary.verdict or m.summary.measured_verdict:
            s = m.summary
            parts = []
            if s.verdict:
                parts.append(f"estimated attenuation {_fmt(s.estimated_attenuation)} ({s.verdict})")
            if s.measured_verdict:
                parts.append(f"measured {_fmt(s.measured_attenuation)} ({s.measured_verdict})")
            if s.verdict and s.measured_verdict and s.verdict != s.measured_verdict:
                parts.append("!! the estimate and the measurement disagree")
            out.write("   " + "; ".join(parts) + "\n")
        if m.measurement is not None:
            out.write(verify_line(m.measurement) + "\n")
        if m.layers:
            out.write(layer_table(m))
        picture = render_chart(m)
        if picture:
            out.write(picture.rstrip("\n") + "\n")
        for line in explanation_lines(m):
            out.write(line + "\n")
        for line in redesign_lines(m):
            out.write(line + "\n")
        for f in m.findings:
            out.write(finding_line(f, m.path) + "\n")
            if f.fix:
                out.write(f"    fix: {f.fix}\n")
        for note in m.notes:
            out.write(f"   note: {note}\n")
        out.write("\n")
    out.write(summary_line(report) + "\n")


def redesign_lines(m: ModelReport) -> list[str]:
    """The advisor's ranked fixes and the chart after the best one."""
    if not m.fixes:
        return []
    from .chart import render_chart_after

    lines = ["   Redesign: each candidate change estimated on the captured graph (nothing was rebuilt)"]
    lines += fix_table(m.fixes, indent="   ")
    best = m.fixes[0]
    picture = render_chart_after(m, best)
    if picture:
        lines.append(f"   after the best fix ({best.title}):")
        lines += picture.rstrip("\n").split("\n")
    return lines


def explanation_lines(m: ModelReport) -> list[str]:
    """Under the chart: why the first layer gets what it gets, and what the estimate could not
    model or had to assume."""
    from ..estimate.explain import why
    from ..estimate.propagate import describe_unhandled

    est = m.estimate
    if est is None:
        return []
    lines = []
    first = next((ly for ly in est.layers if not ly.is_embedding), None)
    att = est.attenuation
    if first is not None and att and att > 0 and first.causes:
        lines.append(f"   why {first.module} gets {att:.1e} of the last layer's gradient: "
                     f"{why(first.causes, math.log10(att), limit=4)}")
    if est.bound_estimated:
        lines.append("   bound: normalization/attention/gates have no fixed Lipschitz constant; their expected gain "
                     "stands in, so the bound column is indicative there")
    for u in describe_unhandled(est.unhandled):
        lines.append(f"   not modelled (treated as identity): {u}")
    for a in est.assumptions[:8]:
        lines.append(f"   assumed: {a}")
    return lines


def layer_table(m: ModelReport) -> str:
    """Per weight layer: the estimate and, with --verify, the measurement beside it."""
    if any(layer.measured is not None for layer in m.layers):
        return _measured_table(m)
    rows = [("#", "layer", "type", "location", "est. grad_ratio", "bound", "measured")]
    for i, layer in enumerate(m.layers):
        est = layer.estimate or {}
        meas = layer.measured or {}
        loc = f"{layer.location.path}:{layer.location.line}" if layer.location else "-"
        rows.append((str(i), layer.module, layer.type, loc, _fmt(est.get("grad_ratio")), _fmt(est.get("bound")),
                     _fmt(meas.get("grad_ratio"))))
    return _columns(rows)


# A layer whose measured grad_ratio is this many times off the estimate (either way) is marked.
DISAGREE_FACTOR = 10.0


def disagreement(estimated, measured) -> str:
    """'' when they agree (or one is missing), else the factor, e.g. '30x low'."""
    import math

    if estimated is None or measured is None or estimated <= 0:
        return ""
    if measured <= 0:
        return "!! 0"
    f = measured / estimated
    if not math.isfinite(f) or (1 / DISAGREE_FACTOR) < f < DISAGREE_FACTOR:
        return ""
    return f"!! {f:.0f}x high" if f >= 1 else f"!! {1 / f:.0f}x low"


def _measured_table(m: ModelReport) -> str:
    rows = [("#", "layer", "type", "location", "est. ratio", "meas. ratio", "est vs meas", "grad norm",
             "delta norm", "zero", "activation")]
    for i, layer in enumerate(m.layers):
        est = layer.estimate or {}
        meas = layer.measured or {}
        lm = m.measurement.layer(layer.module) if m.measurement is not None else None
        loc = f"{layer.location.path}:{layer.location.line}" if layer.location else "-"
        ratio = _fmt(meas.get("grad_ratio"))
        zero, delta, act = "-", "-", ""
        if lm is not None:
            if lm.nonfinite:
                ratio = "non-finite"
            elif lm.structural_zero:
                ratio = "0 (struct.)"
            zero = f"{100 * lm.zero_fraction:.0f}%"
            delta = _fmt(lm.delta_norm)
            sites = m.measurement.activations_after(lm.module)
            act = ", ".join(f"{a.op} {'sat' if a.family == 'saturating' else 'off'} {100 * a.fraction:.0f}%"
                            for a in sites[:2])
        mark = "" if lm is not None and lm.structural_zero else disagreement(est.get("grad_ratio"), meas.get("grad_ratio"))
        rows.append((str(i), layer.module, layer.type, loc, _fmt(est.get("grad_ratio")), ratio, mark,
                     _fmt(meas.get("grad_norm")), delta, zero, act or "-"))
    return _columns(rows)


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["   " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
