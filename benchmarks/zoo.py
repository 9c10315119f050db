"""The real-world zoo: lint every model of torchvision, timm and transformers we can build.

    PYTHONPATH=. nice -n 10 /path/to/zoo-venv/bin/python benchmarks/zoo.py [--family timm] [--only 'vit_*']

Each model becomes a gradlint target file (``<tmp>/<family>_<name>.py::build``, see
``zoo_catalog.py``) and goes through ``gradlint.pipeline.run`` exactly as ``gradlint FILE::build``
would take it. Models run in worker processes, one after another; the parent watches them, so a
crash or a hang costs one model, not the run: the worker is killed and a fresh one takes the rest.

Results merge into ``benchmarks/zoo_results.json`` (by model id, so the zoo can run in parts) and
``benchmarks/ZOO.md`` is rendered from the whole file.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from zoo_catalog import FAMILIES, ZooModel, catalog  # noqa: E402

RESULTS = HERE / "zoo_results.json"
REPORT = HERE / "ZOO.md"
TRACEBACK = "Traceback (most recent call last)"


# -- worker: analyse models one by one, one JSON line per event -------------------------------

def analyze_one(model: ZooModel, folder: Path, args: argparse.Namespace) -> dict:
    from gradlint.config import Config
    from gradlint.pipeline.run import run
    from gradlint.rules import select_rules

    path = folder / f"{model.file_stem}.py"
    path.write_text(model.source, encoding="utf-8")
    config = Config()
    config.timeout = args.timeout
    config.batch_size = args.batch_size
    config.verify = args.verify
    enabled = select_rules(["ALL"], [], [])
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        report, session = run([f"{path}::build"], config, enabled)
    seconds = time.perf_counter() - t0
    rec: dict = {"id": model.id, "family": model.family, "group": model.group, "name": model.name,
                 "seconds": round(seconds, 3), "internal_errors": session.internal_errors,
                 "raw_traceback": TRACEBACK in err.getvalue(), "messages": report.messages}
    if not report.models:
        rec.update(status="failed", error={"stage": "load", "message": "; ".join(report.messages) or "no model"})
        return rec
    m = report.models[0]
    rec.update(
        status=m.status, capture=m.capture, error=m.error,
        timings={k: round(v, 3) for k, v in m.timings.items()},
        summary=m.summary.to_json(),
        findings=[{"code": f.code, "severity": f.severity, "message": f.message, "fix": f.fix} for f in m.findings],
        notes=m.notes,
        layers=len(m.layers),
        depth=m.depth, shortest_depth=m.shortest_depth,
        parameters=m.parameters, materialized=m.materialized,
        input_source=m.input_source or None,
    )
    return rec


def worker(args: argparse.Namespace) -> None:
    import warnings

    warnings.filterwarnings("ignore")  # library deprecation noise; gradlint's output is what we check
    wanted = json.loads(Path(args.worker).read_text())
    models = {m.id: m for m in catalog(sorted({i.split("/")[0] for i in wanted}))[0]}
    with open(args.events, "a", encoding="utf-8") as events, contextlib.ExitStack() as stack:
        if args.keep_targets:
            folder = Path(args.keep_targets)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gradlint_zoo_")))
        for mid in wanted:
            events.write(json.dumps({"start": mid}) + "\n")
            events.flush()
            rec = analyze_one(models[mid], folder, args)
            events.write(json.dumps({"result": rec}) + "\n")
            events.flush()


# -- parent: run workers, survive their crashes and hangs --------------------------------------

def _spawn(ids: list[str], args: argparse.Namespace, scratch: Path, n: int) -> tuple[subprocess.Popen, Path, Path]:
    todo = scratch / f"todo_{n}.json"
    todo.write_text(json.dumps(ids))
    events = scratch / f"events_{n}.jsonl"
    events.write_text("")
    log = scratch / f"stderr_{n}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(todo), "--events", str(events),
           "--timeout", str(args.timeout), "--batch-size", str(args.batch_size)]
    if args.verify:
        cmd.append("--verify")
    if args.keep_targets:
        cmd += ["--keep-targets", args.keep_targets]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["GRADLINT_NO_CACHE"] = "1"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env, start_new_session=True)
    return proc, events, log


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _outside_failure(model: ZooModel, how: str, detail: str) -> dict:
    return {"id": model.id, "family": model.family, "group": model.group, "name": model.name, "status": how,
            "seconds": None,
            "error": {"stage": "zoo", "message": detail}, "findings": [], "raw_traceback": TRACEBACK in detail}


def run_models(models: list[ZooModel], args: argparse.Namespace, worker_tracebacks: list[str]) -> dict[str, dict]:
    """Run the models in chunks of worker processes; returns id -> record. Tracebacks a worker
    printed outside any model's analysis (the zoo's own bugs) go to ``worker_tracebacks``."""
    with tempfile.TemporaryDirectory(prefix="gradlint_zoo_run_") as scratch:
        return _run_models(models, args, worker_tracebacks, Path(scratch))


def _run_models(models: list[ZooModel], args: argparse.Namespace, worker_tracebacks: list[str],
                scratch: Path) -> dict[str, dict]:
    results: dict[str, dict] = {}
    by_id = {m.id: m for m in models}
    pending = [m.id for m in models]
    n = 0
    # The worker's own limit is gradlint's --timeout; this one catches what SIGALRM cannot stop.
    hard_limit = args.timeout * 2 + 60
    while pending:
        chunk, pending = pending[: args.chunk], pending[args.chunk:]
        while chunk:
            n += 1
            proc, events, log = _spawn(chunk, args, scratch, n)
            current, started = None, time.monotonic()
            read = 0
            try:
                while True:
                    time.sleep(0.2)
                    lines = events.read_text(encoding="utf-8").splitlines()
                    for line in lines[read:]:
                        ev = json.loads(line)
                        if "start" in ev:
                            current, started = ev["start"], time.monotonic()
                        else:
                            rec = ev["result"]
                            results[rec["id"]] = rec
                            chunk.remove(rec["id"])
                            current = None
                            _progress(rec, len(results), len(models))
                    read = len(lines)
                    if proc.poll() is not None:
                        break
                    if current is not None and time.monotonic() - started > hard_limit:
                        _kill(proc)
                        results[current] = _outside_failure(by_id[current], "hung", f"no result after {hard_limit:g} s; killed")
                        chunk.remove(current)
                        _progress(results[current], len(results), len(models))
                        current = None
                        break
            except BaseException:
                _kill(proc)
                raise
            # Events written between the last read and the exit.
            for line in events.read_text(encoding="utf-8").splitlines()[read:]:
                ev = json.loads(line)
                if "result" in ev and ev["result"]["id"] in chunk:
                    results[ev["result"]["id"]] = ev["result"]
                    chunk.remove(ev["result"]["id"])
                    current = None
                elif "start" in ev:
                    current = ev["start"]
            if TRACEBACK in log.read_text(errors="replace"):
                worker_tracebacks.append(log.read_text(errors="replace").split(TRACEBACK)[-1].strip()[-500:])
            if proc.returncode not in (0, None) and current is not None and current in chunk:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                results[current] = _outside_failure(
                    by_id[current], "crashed", f"worker exited with code {proc.returncode}: " + " | ".join(tail))
                chunk.remove(current)
                _progress(results[current], len(results), len(models))
            elif proc.returncode not in (0, None) and chunk and current is None and read == 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise SystemExit(f"zoo worker could not start: {' | '.join(tail)}")
    return results


def _progress(rec: dict, done: int, total: int) -> None:
    codes = ",".join(f["code"] for f in rec.get("findings", [])) or "-"
    extra = f" {rec['error']['message'][:100]}" if rec.get("error") else ""
    secs = f"{rec['seconds']:.1f}s" if rec.get("seconds") is not None else "-"
    print(f"[{done}/{total}] {rec['id']}: {rec['status']} {rec.get('capture') or ''} {secs} {codes}{extra}", flush=True)


def environment() -> dict:
    import importlib.metadata as md

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "torch": version("torch"), "torchvision": version("torchvision"),
            "timm": version("timm"), "transformers": version("transformers"), "gradlint_commit": commit or None,
            "cpus": os.cpu_count()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", action="append", choices=sorted(FAMILIES), help="only these families (repeatable)")
    p.add_argument("--only", action="append", help="only model names matching this glob (repeatable)")
    p.add_argument("--timeout", type=float, default=180.0, help="gradlint's per-model --timeout (seconds)")
    p.add_argument("--batch-size", type=int, default=2, help="batch size of inferred inputs (gradlint --batch-size)")
    p.add_argument("--chunk", type=int, default=25, help="models per worker process (fresh memory between chunks)")
    p.add_argument("--verify", action="store_true", help="also run gradlint's --verify stage (when installed)")
    p.add_argument("--keep-targets", metavar="DIR", help="write the generated target files here (to rerun with the CLI)")
    p.add_argument("--report-only", action="store_true", help="render ZOO.md from zoo_results.json, run nothing")
    p.add_argument("--results", default=str(RESULTS), help=argparse.SUPPRESS)
    p.add_argument("--report", default=str(REPORT), help=argparse.SUPPRESS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--events", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    from zoo_report import render

    results_path = Path(args.results)
    data = json.loads(results_path.read_text()) if results_path.exists() else {"models": []}
    if not args.report_only:
        if args.verify:
            import importlib.util

            sys.path.insert(0, str(ROOT))
            if importlib.util.find_spec("gradlint.verify.run") is None:
                print("zoo: --verify is not available in this gradlint yet; running static only", file=sys.stderr)
                args.verify = False
        models, skipped = catalog(args.family)
        for family in skipped:
            print(f"zoo: skipping {family}: package {FAMILIES[family][0]!r} is not installed", file=sys.stderr)
        if args.only:
            models = [m for m in models if any(fnmatch.fnmatch(m.name, g) for g in args.only)]
        worker_tracebacks: list[str] = []
        fresh = run_models(models, args, worker_tracebacks)
        everything, _ = catalog()
        order = {m.id: i for i, m in enumerate(everything)}
        merged = {r["id"]: r for r in data["models"] if r["id"] in order}
        merged.update(fresh)
        data = {"environment": environment(), "verify": args.verify, "worker_tracebacks": worker_tracebacks,
                "models": sorted(merged.values(), key=lambda r: order[r["id"]])}
        results_path.write_text(json.dumps(data, indent=1) + "\n")
    Path(args.report).write_text(render(data))
    print(f"zoo: wrote {args.report} and {results_path}")


if __name__ == "__main__":
    main()
