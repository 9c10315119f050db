"""Which fixes to apply, applying them, and the proof that a rewritten file still works.

* ``annotate``: every fix's edit is tried on the current sources (nothing written); a codemod that
  cannot rewrite its site turns the fix into ``manual``, with the codemod's instructions.
* ``choose``: per model, the best ``safe`` fix; with ``unsafe`` the best fix that has an edit,
  which is an architecture change only when it ranks above every safe one (it is predicted better).
* ``rewrite``: the new text of every file the chosen fixes touch.
* ``commit``: write them, re-lint, and put a file back when its model no longer builds or its
  verdict got worse: a fix never leaves a broken file behind.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from ..pipeline.records import ModelReport, Report
from ..rules.finding import Fix
from .codemods import CannotRewrite, apply_change, change_paths, note_for


@dataclass
class Chosen:
    model: ModelReport
    fix: Fix
    codes: list[str]  # the findings it answers


@dataclass
class Rewrite:
    """The planned new text of each file, and the fixes that produced it."""

    old: dict[str, str] = field(default_factory=dict)  # real path -> text before
    new: dict[str, str] = field(default_factory=dict)  # real path -> text after
    chosen: list[Chosen] = field(default_factory=list)
    skipped: list[tuple[Chosen, str]] = field(default_factory=list)  # fix, why it could not be applied

    def diff(self) -> str:
        out = []
        for path, new in self.new.items():
            old = self.old[path]
            if old == new:
                continue
            shown = _display(path)
            out += difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{shown}", f"b/{shown}")
        return "".join(out)

    @property
    def changed(self) -> list[str]:
        return [p for p, t in self.new.items() if t != self.old[p]]


def _display(path: str) -> str:
    from ..ir.source import display_path

    return display_path(path)


def _read(path: str, cache: dict[str, str]) -> str:
    real = os.path.realpath(path)
    if real not in cache:
        try:
            with open(real, encoding="utf-8", newline="") as fh:  # keep the file's line endings
                cache[real] = fh.read()
        except (OSError, UnicodeDecodeError) as e:
            raise CannotRewrite(f"cannot read {path}: {e}") from None
    return cache[real]


def note(fix: Fix) -> str:
    return note_for(fix.title, fix.predicted_attenuation, fix.predicted_verdict)


def try_fix(fix: Fix, texts: dict[str, str]) -> dict[str, str]:
    """The files ``fix`` changes, with their new text, starting from ``texts`` (read on demand)."""
    out: dict[str, str] = {}
    for change in (fix.edit or {}).get("changes", []):
        for path in change_paths(change):
            real = os.path.realpath(path)
            current = out.get(real, _read(real, texts))
            out[real] = apply_change(current, change, _display(real), note(fix))
    return out


def annotate(report: Report) -> None:
    """Mark fixes whose edit cannot be made on today's sources as ``manual``, with the reason."""
    texts: dict[str, str] = {}
    for model in report.models:
        for fix in _model_fixes(model):
            if fix.applicability == "manual" or not fix.edit:
                continue
            try:
                try_fix(fix, texts)
            except CannotRewrite as e:
                fix.applicability = "manual"
                fix.detail = f"{fix.detail}. Not rewritten automatically: {e}"
                fix.edit = None


def _model_fixes(model: ModelReport) -> list[Fix]:
    """The model's fixes, and every copy of them its findings carry (the same objects)."""
    seen: dict[int, Fix] = {id(f): f for f in model.fixes}
    for finding in model.findings:
        for f in finding.fixes:
            seen.setdefault(id(f), f)
    return list(seen.values())


def choose(report: Report, unsafe: bool) -> list[Chosen]:
    out = []
    allowed = ("safe", "unsafe") if unsafe else ("safe",)
    for model in report.models:
        ranked = model.fixes or next((f.fixes for f in model.findings if f.fixes), [])
        pick = next((f for f in ranked if f.edit and f.applicability in allowed), None)
        if pick is not None:
            codes = sorted({f.code for f in model.findings if pick in f.fixes or any(x.title == pick.title for x in f.fixes)})
            out.append(Chosen(model, pick, codes))
    return out


def rewrite(report: Report, unsafe: bool) -> Rewrite:
    plan = Rewrite()
    texts: dict[str, str] = {}
    done: set[str] = set()  # one model class or function gets one init: the first model's fix wins
    for chosen in choose(report, unsafe):
        key = repr((chosen.fix.edit or {}).get("changes"))
        if key in done:
            continue
        try:
            changed = try_fix(chosen.fix, {**texts, **plan.new})
        except CannotRewrite as e:
            plan.skipped.append((chosen, str(e)))
            continue
        for path, text in changed.items():
            plan.old.setdefault(path, texts[path] if path in texts else _read(path, texts))
            plan.new[path] = text
        done.add(key)
        plan.chosen.append(chosen)
    return plan


@dataclass
class Outcome:
    report: Report  # the re-lint of the rewritten files (what remains)
    applied: list[tuple[Chosen, Any]] = field(default_factory=list)  # (fix, the model's report after)
    restored: list[tuple[Chosen, str]] = field(default_factory=list)  # fixes undone, and why
    mismatched: list[tuple[Chosen, str]] = field(default_factory=list)  # verdict after != predicted


def commit(plan: Rewrite, relint: Callable[[], Report]) -> Outcome:
    """Write the planned files, re-lint, and restore any file whose model broke or got worse."""
    for path in plan.changed:
        _write(path, plan.new[path])
    after = relint()
    by_target = {m.target: m for m in after.models}
    broken = []
    out = Outcome(after)
    for chosen in plan.chosen:
        m = by_target.get(chosen.model.target)
        why = _regression(chosen, m)
        if why:
            broken.append((chosen, why))
        else:
            out.applied.append((chosen, m))
    if broken:
        files = set()
        for chosen, _ in broken:
            for change in (chosen.fix.edit or {}).get("changes", []):
                files.update(os.path.realpath(p) for p in change_paths(change))
        for path in files & set(plan.changed):
            _write(path, plan.old[path])
        out.restored = broken
        keep = [(c, m) for c, m in out.applied if not files & _files(c)]
        out.restored += [(c, "it shares a file with a fix that had to be undone") for c, _ in out.applied if files & _files(c)]
        out.applied = keep
        out.report = relint()
        by_target = {m.target: m for m in out.report.models}
        out.applied = [(c, by_target.get(c.model.target, m)) for c, m in out.applied]
    for chosen, m in out.applied:
        chosen.fix.applied = True
        if m is not None and m.summary.verdict != chosen.fix.predicted_verdict:
            out.mismatched.append((chosen, f"predicted {chosen.fix.predicted_verdict}, the re-lint says "
                                           f"{m.summary.verdict} ({_sci(m.summary.estimated_attenuation)})"))
        if m is not None:  # what remains of the model (notes, once healthy) says what was applied
            for finding in m.findings:
                if not finding.fixes:
                    finding.fixes = [chosen.fix]
    return out


def _files(chosen: Chosen) -> set[str]:
    return {os.path.realpath(p) for c in (chosen.fix.edit or {}).get("changes", []) for p in change_paths(c)}


def _regression(chosen: Chosen, after: ModelReport | None) -> str:
    """Why the rewrite must be undone ('' when it may stay)."""
    if after is None:
        return "the model is no longer found in its file"
    if after.status != "analyzed":
        err = after.error or {}
        return f"the rewritten model does not {err.get('stage', 'build')}: {err.get('message', '')}".rstrip(": ")
    before = chosen.model.summary
    from ..advise.advisor import outside

    th = chosen.model.thresholds
    if outside(after.summary.estimated_attenuation, th) > outside(before.estimated_attenuation, th) + 0.5:
        return (f"the re-lint predicts {_sci(after.summary.estimated_attenuation)}, worse than "
                f"{_sci(before.estimated_attenuation)} before")
    return ""


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _write(path: str, text: str) -> None:
    tmp = f"{path}.gradlint-tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)
