"""Accuracy benchmark of the estimator against the contract's measurement.

For every model of the accuracy zoo (``accuracy_cases.py``): the estimate exactly as ``gradlint`` computes it
(``pipeline.analyze_built``: capture, the estimate stage, on materialized weights), and the ground
truth, one measured batch in train mode with the contract's loss (``gradlint.verify.measure``),
median of 3 seeds (a fresh init and batch each; seed 0 is the init the estimate saw). Scored per
family and overall, with the naive baseline (the product of activation-derivative maxima):

* verdict agreement (models whose measured attenuation lies within 3x of a threshold are
  reported separately, not scored);
* |log10(estimated / measured attenuation)|: share within one decade, and the median;
* the median per-layer |log10 error| of grad_ratio (every layer but the last, the reference).

Runs in parts; results accumulate in ``benchmarks/results.json`` and ``benchmarks/RESULTS.md`` is
written from all of them:

    python benchmarks/accuracy.py                       # everything importable here
    python benchmarks/accuracy.py --family mlp,cnn --quick
    /work/zoo-venv/bin/python benchmarks/accuracy.py --family torchvision,timm
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from accuracy_cases import FAMILIES, Case, all_cases  # noqa: E402

VANISHING, EXPLODING = 1e-3, 1e4
NEAR = 3.0  # measured attenuation within this factor of a threshold: not scored
SEEDS = 3
JSON_PATH = HERE / "results.json"
MD_PATH = HERE / "RESULTS.md"


def verdict(att: float | None, zero: bool = False) -> str | None:
    if att is None:
        return None
    if att == 0.0:
        return "structural-zero" if zero else "vanishing"
    return "vanishing" if att < VANISHING else "exploding" if att > EXPLODING else "healthy"


def near_threshold(att: float | None) -> bool:
    if att is None or att <= 0:
        return False
    return any(t / NEAR <= att <= t * NEAR for t in (VANISHING, EXPLODING))


# -- the estimate, through the product's own pipeline ------------------------------------------------

def estimate(case: Case) -> dict:
    from gradlint.config import Config
    from gradlint.load.build import build_model
    from gradlint.load.discover import Candidate, LoadedFile
    from gradlint.load.targets import Target
    from gradlint.pipeline.run import Session, analyze_built

    target = Target(str(Path(__file__).resolve()), case.name.replace("-", "_"))
    torch.manual_seed(0)
    built = build_model(Candidate(target, case.factory, None), materialize_limit=10 ** 12)
    loaded = LoadedFile(target, example_inputs=case.inputs)
    session = Session(Config(materialize_limit=10 ** 12), enabled=set())
    t0 = time.perf_counter()
    torch.manual_seed(0)
    report = analyze_built(built, loaded, session)
    elapsed = time.perf_counter() - t0
    if report.status != "analyzed" or report.estimate is None:
        raise RuntimeError(report.error or report.notes or session.internal_errors)
    from gradlint.estimate.propagate import describe_unhandled

    est = report.estimate
    layers = [(n.module or f"#{n.id}", list(n.attrs.get("weights", ()))) for n in report.graph.weight_layers()]
    return {"estimate": est, "layers": layers, "verdict": report.summary.verdict, "seconds": elapsed,
            "timings": dict(report.timings), "capture": report.capture, "unhandled": describe_unhandled(est.unhandled)}


# -- the ground truth -----------------------------------------------------------------------------------

def measure(case: Case, layers: list, seeds: int) -> list[list[float | None]]:
    from gradlint.verify.measure import grad_ratios
    from gradlint.verify.measure import measure as contract_measure

    runs = []
    for s in range(seeds):
        torch.manual_seed(s)
        model = case.factory().to(case.dtype)
        torch.manual_seed(1000 + s)
        args = tuple(a.to(case.dtype) if torch.is_floating_point(a) else a for a in case.inputs())
        grads = contract_measure(model, args, {}, layers, seed=s)
        runs.append(grad_ratios(grads))
        del model
    return runs


def median_or_none(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(vals) if vals else None


def run_case(case: Case, seeds: int) -> dict:
    est = estimate(case)
    runs = measure(case, est["layers"], seeds)
    n = len(est["layers"])
    measured = [median_or_none([r[i] for r in runs]) for i in range(n)]
    view = est["estimate"]
    first = next((i for i, ly in enumerate(view.layers) if not ly.is_embedding), None)
    zero_all = first is not None and all(r[first] == 0.0 for r in runs)
    rec = {
        "family": case.family, "name": case.name, "hard": case.hard,
        "layers": [ly.module for ly in view.layers],
        "est": [ly.grad_ratio for ly in view.layers],
        "naive": [ly.naive for ly in view.layers],
        "bound": [ly.bound for ly in view.layers],
        "meas": measured,
        "first": first,
        "est_att": view.attenuation,
        "est_verdict": est["verdict"],
        "meas_att": measured[first] if first is not None else None,
        "meas_verdict": verdict(measured[first] if first is not None else None, zero_all),
        "naive_att": view.layers[first].naive if first is not None else None,
        "seconds": round(est["seconds"], 3),
        "unhandled": est["unhandled"],
    }
    rec["naive_verdict"] = verdict(rec["naive_att"])
    return rec


# -- scoring ---------------------------------------------------------------------------------------------

def _logerr(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0 or b <= 0 or not math.isfinite(a) or not math.isfinite(b):
        return None
    return abs(math.log10(a / b))


def score(records: list[dict], which: str) -> dict:
    """which: 'est' or 'naive'."""
    att_key, v_key = f"{which}_att", f"{which}_verdict"
    scored = [r for r in records if r["meas_verdict"] is not None and not near_threshold(r["meas_att"])]
    near = [r for r in records if near_threshold(r["meas_att"])]
    agree = sum(r[v_key] == r["meas_verdict"] for r in scored)
    errs = [e for e in (_logerr(r[att_key], r["meas_att"]) for r in records) if e is not None]
    per_layer = []
    for r in records:
        vals = r[which]
        for i in range(len(r["meas"]) - 1):
            e = _logerr(vals[i], r["meas"][i])
            if e is not None:
                per_layer.append(e)
    return {
        "models": len(records), "scored": len(scored), "agree": agree,
        "agreement": agree / len(scored) if scored else None,
        "near": len(near), "near_agree": sum(r[v_key] == r["meas_verdict"] for r in near),
        "within_decade": sum(e <= 1.0 for e in errs) / len(errs) if errs else None,
        "median_att_err": statistics.median(errs) if errs else None,
        "n_att": len(errs),
        "per_layer_median": statistics.median(per_layer) if per_layer else None,
        "n_layers": len(per_layer),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _dec(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _sci(x: float | None) -> str:
    return "-" if x is None else ("0" if x == 0 else f"{x:.1e}")


def write_markdown(records: list[dict], meta: dict, path: Path) -> None:
    fams = [f for f in FAMILIES if any(r["family"] == f for r in records)]
    lines = ["# Estimator accuracy", "",
             "Generated by `benchmarks/accuracy.py`; do not edit. Ground truth: the contract's measurement "
             "(`gradlint.verify.measure`: one batch, train mode, a random Gaussian error signal on every output), "
             f"median of {meta.get('seeds', SEEDS)} seeds. Estimate: `gradlint`'s pipeline on the materialized model "
             "(the weights of seed 0). Baseline: the product of activation-derivative maxima along the path.", "",
             f"Environment: {meta.get('env', '')}.", "",
             "## Summary", "",
             "| family | models | verdict agreement (scored) | within 1 decade | median \\|log10 err\\| of attenuation "
             "| per-layer median \\|log10 err\\| | near a threshold (agree / n) |",
             "|---|---|---|---|---|---|---|"]

    def row(name: str, recs: list[dict]) -> str:
        e, n = score(recs, "est"), score(recs, "naive")
        return (f"| {name} | {e['models']} | {_pct(e['agreement'])} ({e['agree']}/{e['scored']}) vs baseline "
                f"{_pct(n['agreement'])} | {_pct(e['within_decade'])} vs {_pct(n['within_decade'])} "
                f"| {_dec(e['median_att_err'])} vs {_dec(n['median_att_err'])} "
                f"| {_dec(e['per_layer_median'])} vs {_dec(n['per_layer_median'])} "
                f"| {e['near_agree']}/{e['near']} (baseline {n['near_agree']}/{n['near']}) |")

    for f in fams:
        lines.append(row(f, [r for r in records if r["family"] == f]))
    lines.append(row("**overall**", records))
    e, n = score(records, "est"), score(records, "naive")
    mc = [r for r in records if r["family"] in ("mlp", "cnn")]
    emc = score(mc, "est") if mc else None
    lines += ["", "Each cell: estimate vs baseline.", "",
              "## Targets", "",
              "| target | result | met |", "|---|---|---|",
              f"| verdict agreement >= 95% | {_pct(e['agreement'])} | {'yes' if (e['agreement'] or 0) >= 0.95 else 'no'} |",
              f"| >= 90% of models within one decade | {_pct(e['within_decade'])} | "
              f"{'yes' if (e['within_decade'] or 0) >= 0.90 else 'no'} |"]
    if emc:
        for f in ("mlp", "cnn"):
            s = score([r for r in records if r["family"] == f], "est")
            if s["models"]:
                lines.append(f"| per-layer median <= 0.3 decades ({f}) | {_dec(s['per_layer_median'])} | "
                             f"{'yes' if (s['per_layer_median'] or 9) <= 0.3 else 'no'} |")
    better = all([
        (e["agreement"] or 0) > (n["agreement"] or 0),
        (e["within_decade"] or 0) > (n["within_decade"] or 0),
        (e["median_att_err"] or 9) < (n["median_att_err"] or 9),
        (e["per_layer_median"] or 9) < (n["per_layer_median"] or 9),
    ])
    lines.append(f"| better than the baseline on every overall figure | agreement {_pct(e['agreement'])} vs "
                 f"{_pct(n['agreement'])}, within a decade {_pct(e['within_decade'])} vs {_pct(n['within_decade'])}, "
                 f"median {_dec(e['median_att_err'])} vs {_dec(n['median_att_err'])}, per-layer "
                 f"{_dec(e['per_layer_median'])} vs {_dec(n['per_layer_median'])} | {'yes' if better else 'no'} |")
    hard = [r for r in records if r["hard"]]
    if hard:
        lines += ["", "## The issue's hard cases", "",
                  "| case | model | measured attenuation | estimate | baseline | verdict (measured / estimated) |",
                  "|---|---|---|---|---|---|"]
        for r in hard:
            lines.append(f"| {r['hard']} | {r['name']} | {_sci(r['meas_att'])} | {_sci(r['est_att'])} | "
                         f"{_sci(r['naive_att'])} | {r['meas_verdict']} / {r['est_verdict']} |")
    misses = [r for r in records if r["meas_verdict"] and r["est_verdict"] != r["meas_verdict"]]
    if misses:
        lines += ["", "## Disagreements", "", "| model | measured | estimate | near a threshold |", "|---|---|---|---|"]
        for r in misses:
            lines.append(f"| {r['name']} | {_sci(r['meas_att'])} ({r['meas_verdict']}) | {_sci(r['est_att'])} "
                         f"({r['est_verdict']}) | {'yes' if near_threshold(r['meas_att']) else 'no'} |")
    lines += ["", "## Every model", "",
              "| family | model | measured attenuation | estimate | baseline | \\|log10 err\\| | per-layer median | "
              "estimate time (s) | not modelled |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        pl = [x for x in (_logerr(a, b) for a, b in zip(r["est"][:-1], r["meas"][:-1])) if x is not None]
        lines.append(f"| {r['family']} | {r['name']} | {_sci(r['meas_att'])} | {_sci(r['est_att'])} | "
                     f"{_sci(r['naive_att'])} | {_dec(_logerr(r['est_att'], r['meas_att']))} | "
                     f"{_dec(statistics.median(pl) if pl else None)} | {r['seconds']} | "
                     f"{'; '.join(r['unhandled']) or '-'} |")
    failed = meta.get("failed") or {}
    if failed:
        lines += ["", "## Could not run", ""] + [f"- {k}: {v}" for k, v in sorted(failed.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- main --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", help="comma-separated families (default: all importable): " + ",".join(FAMILIES))
    ap.add_argument("--quick", action="store_true", help="every 3rd model of each family, plus the hard cases")
    ap.add_argument("--case", help="only models whose name contains this text")
    ap.add_argument("--seeds", type=int, default=SEEDS)
    ap.add_argument("--fresh", action="store_true", help="ignore results.json (do not merge)")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    args = ap.parse_args(argv)
    fams = args.family.split(",") if args.family else None
    cases = all_cases(fams)
    if args.quick:
        by_fam: dict[str, list[Case]] = {}
        for c in cases:
            by_fam.setdefault(c.family, []).append(c)
        cases = [c for fam in by_fam.values() for i, c in enumerate(fam) if i % 3 == 0 or c.hard]
    if args.case:
        cases = [c for c in cases if args.case in c.name]
    if args.list:
        for c in cases:
            print(c.family, c.name, f"[{c.hard}]" if c.hard else "")
        return 0
    store = {"records": {}, "failed": {}, "meta": {}}
    if JSON_PATH.exists() and not args.fresh:
        store = json.loads(JSON_PATH.read_text())
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t_all = time.perf_counter()
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        try:
            rec = run_case(case, args.seeds)
            store["records"][case.name] = rec
            store["failed"].pop(case.name, None)
            status = (f"est {_sci(rec['est_att'])} meas {_sci(rec['meas_att'])} naive {_sci(rec['naive_att'])} "
                      f"({rec['est_verdict']} / {rec['meas_verdict']})")
        except Exception as e:  # noqa: BLE001 - one model must not stop the benchmark
            store["failed"][case.name] = f"{type(e).__name__}: {str(e)[:200]}"
            status = f"FAILED {store['failed'][case.name]}"
        print(f"[{i}/{len(cases)}] {case.family:12s} {case.name:40s} {time.perf_counter() - t0:6.1f}s  {status}", flush=True)
        JSON_PATH.write_text(json.dumps(store, indent=1))
    here = all_cases()
    order = {c.name: i for i, c in enumerate(here)}
    families_here = {c.family for c in here}
    # drop records of models that left the zoo (renamed cases); keep families this Python cannot import
    store["records"] = {k: r for k, r in store["records"].items() if r["family"] not in families_here or k in order}
    records = sorted(store["records"].values(), key=lambda r: (list(FAMILIES).index(r["family"]), order.get(r["name"], 1e9)))
    env = f"Python {platform.python_version()}, torch {torch.__version__}"
    envs = store.setdefault("envs", {})
    for fam in {c.family for c in cases}:
        envs[fam] = env
    store["meta"] = {"seeds": args.seeds, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    JSON_PATH.write_text(json.dumps(store, indent=1))
    fams = [f for f in FAMILIES if f in envs and any(r["family"] == f for r in records)]
    by_env: dict[str, list[str]] = {}
    for f in fams:
        by_env.setdefault(envs[f], []).append(f)
    env_text = "; ".join(f"{e} ({', '.join(fs)})" for e, fs in by_env.items()) + f"; {store['meta']['machine']}"
    write_markdown(records, {**store["meta"], "env": env_text, "failed": store["failed"]}, MD_PATH)
    print(f"{len(cases)} models in {time.perf_counter() - t_all:.0f}s; wrote {MD_PATH}")
    s = score(records, "est")
    print(f"overall: agreement {_pct(s['agreement'])}, within a decade {_pct(s['within_decade'])}, "
          f"median {_dec(s['median_att_err'])}, per-layer {_dec(s['per_layer_median'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
