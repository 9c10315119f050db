"""The redesign advisor, judged by what its fixes do to real measurements.

For every vanishing or exploding model of the accuracy sweeps (``results.json``: the estimate or
the measurement says so; families mlp, cnn, rnn, transformer), the model is written out as a user's
model file (``advisor_cases.py``), analysed as ``gradlint FILE`` analyses it, and rewritten by
``gradlint FILE --fix --unsafe-fixes`` (a subprocess: the command line exactly). The rewritten
file's model is then measured with the contract's measurement (``gradlint.verify.measure``: one
batch, train mode, a random Gaussian error signal on every output), median of 3 seeds, in double
precision as in the accuracy benchmark. Targets (issue 13):

* a fix predicted healthy for >= 95% of the models;
* >= 90% measured healthy after the rewrite;
* the predicted attenuation after the fix within one decade of the measured one for >= 80%.

Also: the advisor's cost beside one estimate (per model, and for the 1000-layer MLP of
``speed.py``), and ``--demo``: 200 SGD steps of the deep sigmoid MLP example before and after
``gradlint --fix``, plotted to ``advisor_demo.png`` (needs matplotlib).

    python benchmarks/advisor.py             # the models, the cost, ADVISOR.md
    python benchmarks/advisor.py --demo      # the training demonstration only
    python benchmarks/advisor.py --case sigmoid --keep /tmp/advised   # a part; keep the files
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from accuracy_cases import all_cases  # noqa: E402
from advisor_cases import source_for  # noqa: E402

FAMILIES = ("mlp", "cnn", "rnn", "transformer")
SEEDS = 3
JSON_PATH = HERE / "advisor_results.json"
MD_PATH = HERE / "ADVISOR.md"
PNG_PATH = HERE / "advisor_demo.png"
VANISHING, EXPLODING = 1e-3, 1e4


def verdict(att: float | None) -> str | None:
    if att is None:
        return None
    return "vanishing" if att < VANISHING else "exploding" if att > EXPLODING else "healthy"


def selected() -> list:
    """Accuracy cases whose estimated or measured verdict is vanishing or exploding."""
    data = json.loads((HERE / "results.json").read_text())
    recs = data["records"]
    recs = list(recs.values()) if isinstance(recs, dict) else recs
    bad = {r["name"]: r for r in recs if r["family"] in FAMILIES
           and ({r.get("est_verdict"), r.get("meas_verdict")} & {"vanishing", "exploding"})}
    return [(c, bad[c.name]) for c in all_cases(list(FAMILIES)) if c.name in bad]


# -- the product, in-process and as a command --------------------------------------------------------

def analyse(path: Path):
    """``gradlint FILE``'s report of the file's model (default rules, no cache), and its graph."""
    from gradlint.config import Config
    from gradlint.load.targets import parse_target
    from gradlint.pipeline.run import Session, analyze_file
    from gradlint.rules import select_rules

    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        result = analyze_file(parse_target(path.name), Session(Config(), select_rules(None, [], [])))
    finally:
        os.chdir(cwd)
    return result.reports[0]


def cli_fix(path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gradlint", "check", path.name, "--fix", "--unsafe-fixes", "--no-cache",
                           "--format", "json"], cwd=path.parent, capture_output=True, text=True, env=env, timeout=1800)


def measure_file(path: Path, report, seeds: int = SEEDS) -> list[float | None]:
    """Per weight layer, the median over seeds of the measured grad_ratio (double precision)."""
    from gradlint.verify.measure import grad_ratios, measure

    spec = importlib.util.spec_from_file_location(f"advised_{abs(hash(str(path)))}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    layers = [(n.module or f"#{n.id}", list(n.attrs.get("weights", ()))) for n in report.graph.weight_layers()]
    runs = []
    for s in range(seeds):
        torch.manual_seed(s)
        model = mod.Net().double()
        torch.manual_seed(1000 + s)
        args = tuple(a.double() if torch.is_floating_point(a) else a for a in mod.example_inputs())
        runs.append(grad_ratios(measure(model, args, {}, layers, seed=s)))
    return [_median([r[i] for r in runs]) for i in range(len(layers))]


def _median(vals):
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return statistics.median(vals) if vals else None


def _first(report) -> int | None:
    est = report.estimate
    return est.first if est is not None else None


def _logerr(a, b):
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return abs(math.log10(a / b))


def run_case(case, record: dict, work: Path) -> dict:
    src = source_for(case)
    rec = {"family": case.family, "name": case.name, "case_est": record.get("est_att"),
           "case_meas": record.get("meas_att"), "case_meas_verdict": record.get("meas_verdict")}
    if src is None:
        rec["error"] = "no model-file writer for this family"
        return rec
    path = work / f"{case.name.replace('-', '_')}.py"
    path.write_text(src, encoding="utf-8")
    before = analyse(path)
    rec["file_est"] = before.summary.estimated_attenuation
    rec["timings"] = {k: round(v, 3) for k, v in before.timings.items() if k in ("estimate", "advise")}
    rec["estimates"] = next((int(n.split()[1]) for n in before.notes if n.startswith("advise:")), 0)
    rec["fixes"] = [{"title": f.title, "kind": f.kind, "predicted": f.predicted_attenuation,
                     "verdict": f.predicted_verdict, "applicability": f.applicability} for f in before.fixes]
    rec["any_healthy"] = any(f.predicted_verdict == "healthy" for f in before.fixes)
    original = path.read_text()
    proc = cli_fix(path)
    rec["cli_rc"] = proc.returncode
    rec["cli_stderr"] = [ln for ln in proc.stderr.splitlines() if ln.startswith("gradlint:")][:6]
    rewritten = path.read_text()
    rec["changed"] = rewritten != original
    if not rec["changed"]:
        rec["error"] = "gradlint --fix --unsafe-fixes changed nothing"
        return rec
    # what the CLI chose: the first fix with an edit in the ranking (see gradlint/fix/apply.py)
    from gradlint.fix.apply import annotate
    from gradlint.pipeline.records import Report

    annotate(Report(models=[before]))
    chosen = next((f for f in before.fixes if f.edit and f.applicability in ("safe", "unsafe")), None)
    rec["applied"] = chosen.title if chosen else None
    rec["applied_kind"] = chosen.kind if chosen else None
    rec["predicted_after"] = chosen.predicted_attenuation if chosen else None
    rec["predicted_verdict"] = chosen.predicted_verdict if chosen else None
    after = analyse(path)
    rec["relint_after"] = after.summary.estimated_attenuation
    measured = measure_file(path, after)
    first = _first(after)
    rec["measured_after"] = measured[first] if first is not None else None
    rec["measured_verdict_after"] = verdict(rec["measured_after"])
    rec["err_decades"] = _logerr(rec["predicted_after"], rec["measured_after"])
    rec["source_after"] = rewritten
    return rec


# -- the cost on a big graph ----------------------------------------------------------------------------

BIG = '''
import torch
import torch.nn as nn


class DeepMLP(nn.Module):
    def __init__(self, depth=1000, width=256):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x
'''


def big_cost(work: Path) -> dict:
    path = work / "deep_mlp_1000.py"
    path.write_text(BIG, encoding="utf-8")
    r = analyse(path)
    return {"model": "MLP, 1000 layers x 256 (speed.py)", "estimate_s": r.timings.get("estimate"),
            "advise_s": r.timings.get("advise"), "verdict": r.summary.verdict,
            "estimates": next((int(n.split()[1]) for n in r.notes if n.startswith("advise:")), 0),
            "best": r.fixes[0].title if r.fixes else None,
            "best_predicted": r.fixes[0].predicted_attenuation if r.fixes else None}


# -- the training demonstration ----------------------------------------------------------------------------

def demo(steps: int = 200) -> dict:
    """The deep sigmoid MLP example before ``gradlint --fix``, after it (the best safe fix), and after
    ``gradlint --fix --unsafe-fixes`` (the best fix): SGD on a synthetic task."""
    work = Path(tempfile.mkdtemp(prefix="gradlint-demo-"))
    try:
        runs = {"before": [], "after --fix": ["--fix"], "after --fix --unsafe-fixes": ["--fix", "--unsafe-fixes"]}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        paths, fixed, diffs = {}, [], {}
        for label, flags in runs.items():
            path = work / label.replace(" ", "_").replace("-", "") / "deep_sigmoid_mlp.py"
            path.parent.mkdir()
            shutil.copy(ROOT / "examples" / "deep_sigmoid_mlp.py", path)
            if flags:
                proc = subprocess.run([sys.executable, "-m", "gradlint", "check", path.name, *flags, "--no-cache"],
                                      cwd=path.parent, capture_output=True, text=True, env=env, timeout=600)
                fixed += [f"{label}: {ln.split(': ', 2)[-1]}" for ln in proc.stderr.splitlines() if "fixed" in ln]
                diffs[label] = subprocess.run(["diff", "-u", str(ROOT / "examples" / "deep_sigmoid_mlp.py"), str(path)],
                                              capture_output=True, text=True).stdout
            paths[label] = path
        curves = {label: train(path, steps) for label, path in paths.items()}
        plot(curves)
        return {"fix": fixed, "final_loss": {k: statistics.mean(v["loss"][-20:]) for k, v in curves.items()},
                "accuracy": {k: v["accuracy"] for k, v in curves.items()},
                "first_layer_change": {k: v["change"][0] for k, v in curves.items()},
                "last_layer_change": {k: v["change"][-1] for k, v in curves.items()},
                "diff": {k: "\n".join(d.splitlines()[2:]) for k, d in diffs.items()}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train(path: Path, steps: int, lr: float = 0.1) -> dict:
    """SGD (batch 64) on a synthetic task: two classes split by a random hyperplane through Gaussian inputs."""
    spec = importlib.util.spec_from_file_location(f"demo_{abs(hash(str(path)))}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 64, generator=g)
    y = (x @ torch.randn(64, generator=g) > 0).long()
    torch.manual_seed(0)
    model = mod.DeepSigmoidMLP(classes=2)
    weights = [(n, p) for n, p in model.named_parameters() if p.dim() == 2]
    start = [p.detach().clone() for _, p in weights]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    change = [float((p.detach() - s).norm() / s.norm()) for (_, p), s in zip(weights, start)]
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    return {"loss": losses, "change": change, "layers": [n.rsplit(".", 1)[0] for n, _ in weights], "accuracy": acc}


def plot(curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for label, c in curves.items():
        k = 10
        smooth = [statistics.mean(c["loss"][max(0, i - k + 1): i + 1]) for i in range(len(c["loss"]))]
        a.plot(smooth, label=f"{label} (accuracy {100 * c['accuracy']:.0f}%)")
        b.semilogy(range(len(c["change"])), [max(v, 1e-12) for v in c["change"]], marker="o", label=label)
    a.set_xlabel("SGD step")
    a.set_ylabel("training loss (mean of 10 steps)")
    a.set_title("training loss")
    a.legend()
    b.set_xlabel("weight layer (input -> output)")
    b.set_ylabel("||W_200 - W_0|| / ||W_0||")
    b.set_title("how much each layer moved in 200 steps")
    b.legend()
    fig.suptitle("examples/deep_sigmoid_mlp.py: 200 SGD steps (lr 0.1, batch 64), two classes split by a hyperplane",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(PNG_PATH, dpi=110)


# -- the report -------------------------------------------------------------------------------------------

def _sci(x) -> str:
    return "-" if x is None else ("0" if x == 0 else f"{x:.1e}")


def write_markdown(records: list[dict], meta: dict) -> None:
    ok = [r for r in records if "error" not in r]
    n = len(records)
    pred_healthy = sum(r.get("any_healthy", False) for r in records)
    healthy_after = sum(r.get("measured_verdict_after") == "healthy" for r in ok)
    errs = [r["err_decades"] for r in ok if r.get("err_decades") is not None]
    within = sum(e <= 1.0 for e in errs)
    ratio = [r["timings"]["advise"] / r["timings"]["estimate"] for r in records
             if r.get("timings", {}).get("advise") and r["timings"].get("estimate")]
    lines = ["# Redesign advisor", "",
             "Generated by `benchmarks/advisor.py`; do not edit. Every vanishing or exploding model of the accuracy "
             "sweeps (families mlp, cnn, rnn, transformer of `results.json`) written as a model file "
             "(`advisor_cases.py`), rewritten by `gradlint FILE --fix --unsafe-fixes`, and the rewritten model "
             f"measured with the contract's measurement (median of {meta['seeds']} seeds, float64).", "",
             f"Environment: {meta['env']}.", "",
             "## Targets", "",
             "| target | result |", "|---|---|",
             f"| a fix predicted healthy for >= 95% of models | {pred_healthy}/{n} ({100 * pred_healthy / max(n, 1):.0f}%) |",
             f"| >= 90% measured healthy after the rewrite | {healthy_after}/{n} ({100 * healthy_after / max(n, 1):.0f}%) |",
             f"| predicted-after within one decade of measured-after for >= 80% | {within}/{len(errs)} "
             f"({100 * within / max(len(errs), 1):.0f}%); median {statistics.median(errs) if errs else 0:.2f} decades |",
             f"| advisor time / the estimate stage's (per model; counterfactuals skip the stage's worst-case bound) | median {statistics.median(ratio) if ratio else 0:.1f}x, "
             f"max {max(ratio) if ratio else 0:.1f}x; median {statistics.median([r['estimates'] for r in ok]) if ok else 0:.0f} "
             "counterfactual estimates |", ""]
    big = meta.get("big")
    if big:
        lines += [f"On the 1000-layer MLP of `speed.py` (meta device): one estimate {big['estimate_s']:.2f} s, the advisor "
                  f"{big['advise_s']:.2f} s ({big['advise_s'] / big['estimate_s']:.1f}x) for {big['estimates']} "
                  f"counterfactual estimates; best fix: {big['best']} -> {_sci(big['best_predicted'])}.", ""]
    lines += ["## Per model", "",
              "| model | before: estimated / measured | fix applied (kind) | predicted after | re-lint after | "
              "measured after | \\|log10 err\\| | fixes predicted healthy |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['name']} | {_sci(r.get('case_est'))} / {_sci(r.get('case_meas'))} | {r['error']} "
                         "| | | | | |")
            continue
        nh = sum(f["verdict"] == "healthy" for f in r["fixes"])
        err = "-" if r.get("err_decades") is None else f"{r['err_decades']:.2f}"
        lines.append(f"| {r['name']} | {_sci(r['file_est'])} / {_sci(r['case_meas'])} | {r['applied']} "
                     f"({r['applied_kind']}) | {_sci(r['predicted_after'])} ({r['predicted_verdict']}) | "
                     f"{_sci(r['relint_after'])} | {_sci(r['measured_after'])} ({r['measured_verdict_after']}) | {err} "
                     f"| {nh}/{len(r['fixes'])} |")
    misses = [r for r in ok if r.get("measured_verdict_after") != "healthy" or (r.get("err_decades") or 0) > 1]
    if misses:
        lines += ["", "## Where the advice missed", ""]
        for r in misses:
            lines.append(f"- **{r['name']}**: applied {r['applied']}; predicted {_sci(r['predicted_after'])}, measured "
                         f"{_sci(r['measured_after'])} ({r['measured_verdict_after']}).")
    demo_rec = meta.get("demo")
    if demo_rec:
        lines += ["", "## Training demonstration", "",
                  "`examples/deep_sigmoid_mlp.py` (20 Linear layers, sigmoid, PyTorch's default init) as it is, after "
                  "`gradlint --fix` (the best safe fix) and after `gradlint --fix --unsafe-fixes` (the best fix): 200 "
                  "steps of SGD (lr 0.1, batch 64) on two classes split by a random hyperplane through 4096 Gaussian "
                  "inputs (64 features), the same seed for all three.", "",
                  f"![loss and per-layer weight change]({PNG_PATH.name})", "",
                  "| model | mean loss, last 20 steps | accuracy after 200 steps | first layer moved | last layer moved |",
                  "|---|---|---|---|---|"]
        for k in demo_rec["final_loss"]:
            lines.append(f"| {k} | {demo_rec['final_loss'][k]:.3f} | {100 * demo_rec['accuracy'][k]:.0f}% | "
                         f"{_sci(demo_rec['first_layer_change'][k])} | {_sci(demo_rec['last_layer_change'][k])} |")
        lines += [""] + [f"- {f}" for f in demo_rec["fix"]]
        for k, d in demo_rec["diff"].items():
            lines += ["", f"The patch of `{k.replace('after ', 'gradlint ')}`:", "", "```diff", d.rstrip(), "```"]
    MD_PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help="only models whose name contains this text")
    ap.add_argument("--demo", action="store_true", help="only the training demonstration (updates ADVISOR.md's section)")
    ap.add_argument("--keep", help="keep the model files (before/after) in this folder")
    args = ap.parse_args(argv)
    old = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    meta = old.get("meta", {})
    meta.update(seeds=SEEDS, env=f"Python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}")
    if args.demo:
        meta["demo"] = demo()
        print(json.dumps({k: v for k, v in meta["demo"].items() if k != "diff"}, indent=1))
        records = old.get("records", [])
    else:
        work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gradlint-advisor-"))
        work.mkdir(parents=True, exist_ok=True)
        records = {r["name"]: r for r in old.get("records", [])}
        for case, record in selected():
            if args.case and args.case not in case.name:
                continue
            t0 = time.time()
            try:
                rec = run_case(case, record, work)
            except Exception as e:  # noqa: BLE001 - one model's failure is a row, not the end of the run
                rec = {"family": case.family, "name": case.name, "error": f"{type(e).__name__}: {e}"}
            rec["seconds"] = round(time.time() - t0, 1)
            records[case.name] = rec
            print(case.name, json.dumps({k: v for k, v in rec.items() if k not in ("source_after", "fixes")})[:600],
                  flush=True)
        if not args.case:
            meta["big"] = big_cost(work)
            print(json.dumps(meta["big"]))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        order = [c.name for c, _ in selected()]
        records = sorted(records.values(), key=lambda r: order.index(r["name"]) if r["name"] in order else 1e9)
    JSON_PATH.write_text(json.dumps({"meta": meta, "records": records}, indent=1, default=str), encoding="utf-8")
    write_markdown(records, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
