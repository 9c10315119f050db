"""Precision and recall of gradlint's findings against measured gradients.

A linter is kept only if it is quiet on good code. For every model whose gradients were measured
(the contract's measurement: one batch at initialization, train mode, a random Gaussian error
signal on every output), this asks what a user running plain ``gradlint FILE`` (static, default
rules, no ``--verify``) is told:

* **false alarms**: models whose measured attenuation is healthy (between 1e-2 and 1e3) that get
  any problem (an error or a warning; notes do not count). Target: <= 2%.
* **caught**: models that vanish or explode (measured attenuation below 1e-3/3 or above 1e4*3,
  i.e. more than 3x past a threshold) that get at least one problem. Target: 100%.
* **structural zeros**: models whose measured early-layer gradient is exactly zero because of a
  zero-initialized weight downstream: each must carry a GL203 note. Target: 100%.
Models between the healthy band and 3x past a threshold are borderline and not scored.

Sources (each a set of models with a measured attenuation):

* ``accuracy``: the accuracy sweeps (``accuracy_cases.py``); truth from ``results.json`` (median
  of 3 seeds, written by ``accuracy.py``); gradlint is run here, in-process, on each case.
* ``zoo``: torchvision, timm and transformers (``zoo_catalog.py``); truth from the zoo's
  ``--verify`` run (``zoo_results.json``); gradlint's static findings from a static zoo run
  (``zoo.py --results zoo_static_results.json``, which ``--zoo`` starts).

    python benchmarks/precision.py --accuracy                      # the CPU families (torch 2.13 venv)
    /work/envs/bench/bin/python benchmarks/precision.py --accuracy # + torchvision/timm cases
    /work/envs/bench/bin/python benchmarks/precision.py --zoo      # static zoo run, then join
    python benchmarks/precision.py --report-only                   # re-render PRECISION.md

Results merge into ``benchmarks/precision_results.json`` (by source and model) and
``benchmarks/PRECISION.md`` is rendered from the whole file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

RESULTS = HERE / "precision_results.json"
REPORT = HERE / "PRECISION.md"
ACCURACY = HERE / "results.json"
ZOO_VERIFIED = HERE / "zoo_results.json"
ZOO_STATIC = HERE / "zoo_static_results.json"

HEALTHY = (1e-2, 1e3)  # the measured band of "healthy" gradients
VANISHING, EXPLODING, PAST = 1e-3, 1e4, 3.0  # more than 3x past a threshold: vanishing / exploding


def truth(att: float | None, verdict: str | None) -> str:
    """healthy | vanishing | exploding | structural-zero | borderline | unknown."""
    if verdict == "structural-zero":
        return "structural-zero"
    if att is None:
        return "unknown"
    if HEALTHY[0] <= att <= HEALTHY[1]:
        return "healthy"
    if att < VANISHING / PAST:
        return "vanishing"
    if att > EXPLODING * PAST:
        return "exploding"
    return "borderline"


def record(source: str, mid: str, family: str, att: float | None, verdict: str | None, findings: list[dict],
           est_verdict: str | None, status: str) -> dict:
    problems = sorted({f["code"] for f in findings if f["severity"] in ("error", "warning")})
    notes = sorted({f["code"] for f in findings if f["severity"] == "info"})
    return {"source": source, "id": mid, "family": family, "measured": att, "measured_verdict": verdict,
            "truth": truth(att, verdict), "estimated_verdict": est_verdict, "status": status,
            "problems": problems, "notes": notes,
            "messages": {f["code"]: f["message"] for f in findings if f["severity"] in ("error", "warning")}}


# -- the accuracy sweeps -------------------------------------------------------------------------------

def run_accuracy(families: list[str] | None) -> list[dict]:
    import torch

    from accuracy_cases import all_cases
    from gradlint.config import Config
    from gradlint.load.build import build_model
    from gradlint.load.discover import Candidate, LoadedFile
    from gradlint.load.targets import Target
    from gradlint.pipeline.run import Session, analyze_built
    from gradlint.rules import select_rules

    truths = json.loads(ACCURACY.read_text())["records"]
    enabled = select_rules(None, [], [])  # what a plain `gradlint FILE` runs
    out = []
    cases = [c for c in all_cases() if (families is None or c.family in families) and c.name in truths]
    for i, case in enumerate(cases, 1):
        t = truths[case.name]
        target = Target(str(HERE / "accuracy_cases.py"), case.name.replace("-", "_"))
        torch.manual_seed(0)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            built = build_model(Candidate(target, case.factory, None), materialize_limit=Config().materialize_limit)
            session = Session(Config(), enabled)
            torch.manual_seed(0)
            m = analyze_built(built, LoadedFile(target, example_inputs=case.inputs), session)
        findings = [{"code": f.code, "severity": f.severity, "message": f.message} for f in m.findings]
        rec = record("accuracy", case.name, case.family, t["meas_att"], t["meas_verdict"], findings,
                     m.summary.verdict, m.status)
        if "GL205" in rec["problems"]:
            rec["gl205_measured"] = _gl205_by_measurement(case)
        out.append(rec)
        print(f"[{i}/{len(cases)}] {case.family:<12} {case.name:<44} {rec['truth']:<15} "
              f"problems {','.join(rec['problems']) or '-'}", flush=True)
    return out


def _gl205_by_measurement(case) -> str:
    """GL205 claims the ordered phase (different inputs reach a layer as nearly the same activations),
    not a gradient problem, so the gradient ratio cannot judge it: measure the batch's cosine similarity
    at the layer it names (``--verify``). "confirmed" when GL205 stays a warning with the measurement
    beside it, "contradicted" when the measured samples differ ten times more than predicted."""
    import torch

    from gradlint.api import analyze

    torch.manual_seed(0)
    model = case.factory()
    torch.manual_seed(0)
    with contextlib.redirect_stderr(io.StringIO()):
        r = analyze(model, case.inputs() if callable(case.inputs) else case.inputs, verify=True, select=["GL205"])
    f = [x for x in r.findings if x.code == "GL205"]
    if not f:
        return "not raised"
    return "confirmed" if f[0].severity == "warning" else "contradicted"


# -- the zoo ---------------------------------------------------------------------------------------------

def run_zoo_static(extra: list[str]) -> None:
    """The zoo, statically (no --verify), into zoo_static_results.json."""
    cmd = [sys.executable, str(HERE / "zoo.py"), "--results", str(ZOO_STATIC), "--report", os.devnull, *extra]
    subprocess.run(cmd, check=True)


def join_zoo() -> list[dict]:
    verified = {r["id"]: r for r in json.loads(ZOO_VERIFIED.read_text())["models"]}
    static = json.loads(ZOO_STATIC.read_text())["models"]
    out = []
    for r in static:
        v = verified.get(r["id"])
        summary = (v or {}).get("summary") or {}
        findings = r.get("findings") or []
        if r.get("status") != "analyzed":
            findings = findings or [{"code": "GL001", "severity": "error", "message": str(r.get("error"))}]
        out.append(record("zoo", r["id"], r["family"], summary.get("measured_attenuation"),
                          summary.get("measured_verdict"), findings, (r.get("summary") or {}).get("verdict"),
                          r.get("status", "failed")))
    return out


# -- scoring and the report ------------------------------------------------------------------------------

def score(records: list[dict]) -> dict:
    healthy = [r for r in records if r["truth"] == "healthy"]
    bad = [r for r in records if r["truth"] in ("vanishing", "exploding")]
    zeros = [r for r in records if r["truth"] == "structural-zero"]
    false_alarms = [r for r in healthy if [c for c in r["problems"] if c != "GL205"]
                    or ("GL205" in r["problems"] and r.get("gl205_measured") != "confirmed")]
    ordered = [r for r in healthy if "GL205" in r["problems"]]
    missed = [r for r in bad if not r["problems"]]
    unnoted = [r for r in zeros if "GL203" not in r["notes"] + r["problems"]]
    return {
        "models": len(records), "healthy": len(healthy), "false_alarms": false_alarms,
        "bad": len(bad), "missed": missed, "zeros": len(zeros), "unnoted": unnoted,
        "ordered": ordered, "ordered_confirmed": [r for r in ordered if r.get("gl205_measured") == "confirmed"],
        "borderline": sum(r["truth"] == "borderline" for r in records),
        "unknown": sum(r["truth"] == "unknown" for r in records),
    }


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "-"


def render(data: dict) -> str:
    records = data["records"]
    lines = ["# Precision of the findings", "",
             "Generated by `benchmarks/precision.py`; do not edit. What a plain `gradlint FILE` (static, default rules) "
             "reports, against the contract's measurement of the same model at initialization. Healthy: measured "
             "attenuation between 1e-2 and 1e3. Vanishing/exploding: more than 3x past a threshold (below 3.3e-4 or "
             "above 3e4). A problem is an error or a warning; notes (info) never count. GL205 (inputs-"
             "indistinguishable) claims the ordered phase, not a gradient problem: on a gradient-healthy model it is "
             "a false alarm only when the measured cosine similarity between the batch's samples contradicts it "
             "(`--verify` on the same model); where it was not measured (the zoo) it counts as a false alarm.", ""]
    for env in data.get("environments", []):
        lines.append(f"Environment: {env}")
    lines += ["", "## Summary", "",
              "| source | models | healthy | false alarms (target <= 2%) | vanishing/exploding | caught (target 100%) | "
              "structural zero | with a note (target 100%) | borderline (not scored) |",
              "|---|---|---|---|---|---|---|---|---|"]
    groups = {"accuracy": [r for r in records if r["source"] == "accuracy"],
              "zoo": [r for r in records if r["source"] == "zoo"]}
    groups["**all**"] = records
    for name, rs in groups.items():
        if not rs:
            continue
        s = score(rs)
        lines.append(f"| {name} | {s['models']} | {s['healthy']} | {len(s['false_alarms'])} "
                     f"({_pct(len(s['false_alarms']), s['healthy'])}) | {s['bad']} | {s['bad'] - len(s['missed'])} "
                     f"({_pct(s['bad'] - len(s['missed']), s['bad'])}) | {s['zeros']} | {s['zeros'] - len(s['unnoted'])} "
                     f"({_pct(s['zeros'] - len(s['unnoted']), s['zeros'])}) | {s['borderline']} |")
    s = score(records)
    lines += ["", f"GL205 on gradient-healthy models: {len(s['ordered'])}, of which the measured cosine similarity "
              f"confirms {len(s['ordered_confirmed'])} (the samples' activations are as alike as predicted).", ""]
    for r in s["ordered_confirmed"]:
        lines.append(f"- `{r['source']}/{r['id']}`: {r['messages']['GL205'][:200]}")
    lines += ["", "## False alarms", ""]
    if not s["false_alarms"]:
        lines.append("None.")
    for r in s["false_alarms"]:
        msg = "; ".join(f"{c}: {m[:220]}" for c, m in r["messages"].items())
        lines.append(f"- `{r['source']}/{r['id']}` (measured {r['measured']:.2e}): {msg}")
    lines += ["", "## Missed vanishing/exploding models", ""]
    if not s["missed"]:
        lines.append("None.")
    for r in s["missed"]:
        lines.append(f"- `{r['source']}/{r['id']}` (measured {r['measured']:.2e}, estimated {r['estimated_verdict']}); "
                     f"notes: {', '.join(r['notes']) or '-'}")
    lines += ["", "## Structural zeros without a note", ""]
    lines.append("None." if not s["unnoted"] else "\n".join(f"- `{r['source']}/{r['id']}`" for r in s["unnoted"]))
    notes = sum(1 for r in records if r["notes"])
    lines += ["", "## Notes", "",
              f"{notes} of {len(records)} models carry notes (shown with `--show-notes`); by code: "
              + ", ".join(f"{c} {n}" for c, n in sorted(_count(r["notes"] for r in records).items())) + "."]
    return "\n".join(lines) + "\n"


def _count(groups) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in groups:
        for c in g:
            out[c] = out.get(c, 0) + 1
    return out


def environment() -> str:
    import importlib.metadata as md

    def v(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "-"

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return (f"Python {platform.python_version()}, torch {v('torch')}, torchvision {v('torchvision')}, "
            f"timm {v('timm')}, transformers {v('transformers')}, gradlint at {commit}, {time.strftime('%Y-%m-%d')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accuracy", action="store_true", help="lint the accuracy cases importable here")
    p.add_argument("--family", help="comma-separated accuracy families (default: all importable)")
    p.add_argument("--zoo", action="store_true", help="run the zoo statically, then join with its --verify run")
    p.add_argument("--zoo-join-only", action="store_true", help="join zoo_static_results.json without running")
    p.add_argument("--zoo-args", default="", help="extra arguments for zoo.py (e.g. '--family timm')")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"records": [], "environments": []}
    fresh: list[dict] = []
    if args.accuracy and not args.report_only:
        fresh += run_accuracy(args.family.split(",") if args.family else None)
    if (args.zoo or args.zoo_join_only) and not args.report_only:
        if args.zoo:
            run_zoo_static(args.zoo_args.split())
        fresh += join_zoo()
    if fresh:
        keyed = {(r["source"], r["id"]): r for r in data["records"]}
        keyed.update({(r["source"], r["id"]): r for r in fresh})
        data["records"] = sorted(keyed.values(), key=lambda r: (r["source"], r["family"], r["id"]))
        env = environment()
        data["environments"] = [e for e in data.get("environments", []) if e.split(", gradlint")[0] != env.split(", gradlint")[0]] + [env]
        RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    REPORT.write_text(render(data))
    s = score(data["records"])
    print(f"precision: {s['models']} models; false alarms {len(s['false_alarms'])}/{s['healthy']}; "
          f"caught {s['bad'] - len(s['missed'])}/{s['bad']}; structural zeros noted "
          f"{s['zeros'] - len(s['unnoted'])}/{s['zeros']}; wrote {REPORT.name}")


if __name__ == "__main__":
    main()
