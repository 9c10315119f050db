"""The wild corpus: gradlint on model files written the way users write them, on the libraries they use.

    nice -n 10 python3 benchmarks/wild.py [--only 'monai/*'] [--jobs 2] [--no-verify]
    python3 benchmarks/wild.py --report-only            # re-render WILD.md from wild_results.json

For every entry of ``wild_catalog.py`` this runs the real CLI, the way a user would, in a fresh
process of the benchmark environment (``--python``, default /work/envs/bench/bin/python, see
WILD_ENV.md) with the checkout under test first on PYTHONPATH (``--gradlint``, default the
repository holding this script; gradlint is never installed into that environment):

1. the *first try*: ``python -m gradlint <first args> --format json --select ALL``, run from the
   file's folder (a repository's root for repo files);
2. the *second try*, when the first analyzed nothing (failed, crashed, or exited 0 with no model)
   and the entry has one;
3. ``--verify`` on the try that worked, to compare the static estimate with one measured batch.

Each run has a wall-clock limit (``--timeout``, default 300 s; the process group is killed), so a
hang costs one model. gradlint's own ``--timeout`` is left at its default, as a user would.
Results merge by id into ``benchmarks/wild_results.json`` (so the corpus can run in parts) and
``benchmarks/WILD.md`` is rendered from the whole file (``wild_report.py``).

The parent process needs only the standard library: it runs under any Python 3.10+.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from wild_catalog import CORPUS, ENTRIES, Entry, check_unique, mirror_dir  # noqa: E402

RESULTS = HERE / "wild_results.json"
REPORT = HERE / "WILD.md"
DEFAULT_PYTHON = "/work/envs/bench/bin/python"
# Library versions the report names (pip distribution names).
LIBRARIES = sorted({e.library for e in ENTRIES if e.section == "library"} | {"torch", "torchvision"})

_print_lock = threading.Lock()


# -- one CLI run ---------------------------------------------------------------------------------

def run_cli(argv: list[str], cwd: Path, args: argparse.Namespace) -> dict:
    """Run ``python -m gradlint ARGV --format json --select ALL`` in ``cwd``; never raises."""
    cmd = [args.python, "-m", "gradlint", *argv, "--format", "json", "--select", "ALL"]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(args.gradlint).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    env.update({
        "GRADLINT_NO_CACHE": "1",  # every run analyses afresh (the user's first run has no cache either)
        "HF_HUB_OFFLINE": "1",  # nothing may be downloaded; fail fast instead of retrying a hub
        "YOLO_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "ignore",
    })
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True, errors="replace")
    try:
        out, err = proc.communicate(timeout=args.timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    seconds = round(time.monotonic() - t0, 2)
    report = None
    with contextlib.suppress(ValueError):
        report = json.loads(out) if out.strip() else None
    return {"rc": None if timed_out else proc.returncode, "seconds": seconds, "timed_out": timed_out,
            "report": report, "stderr": err}


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _stderr_reason(stderr: str) -> str:
    """The last meaningful stderr line (the exception, or gradlint's own message)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith(" ")]
    lines = [ln for ln in lines if "Warning" not in ln and not ln.startswith("warnings.warn")]
    return _one_line(lines[-1]) if lines else ""


def summarize_run(run: dict) -> dict:
    """Classify one run: analyzed | failed | nothing | crashed | timeout, plus what it found."""
    rec: dict = {"rc": run["rc"], "seconds": run["seconds"]}
    if run["timed_out"]:
        rec.update(outcome="timeout", stage="wild", message=f"no result within the benchmark's wall-clock limit")
        return rec
    report = run["report"]
    if report is None or not isinstance(report.get("models"), list):
        message = _stderr_reason(run["stderr"]) or f"exit {run['rc']}, no JSON"
        # Exit 2 with gradlint's own "error:" line is a rejected command (a target it cannot parse,
        # an unknown option), not a crash: the user is told what is wrong.
        usage = run["rc"] == 2 and message.startswith("gradlint: error:")
        rec.update(outcome="usage-error" if usage else "crashed", stage="cli", message=message)
        return rec
    models = report["models"]
    rec["models"] = [{"target": m["target"], "status": m["status"], "layers": len(m.get("layers") or []),
                      "error": m.get("error")} for m in models]
    if not models:
        # Exit 0 and an empty report: the user sees nothing on stdout (gradlint may say why on stderr).
        rec.update(outcome="nothing" if run["rc"] == 0 else "crashed", stage="load",
                   message=_stderr_reason(run["stderr"]) or "no model found, nothing printed")
        return rec
    analyzed = [m for m in models if m["status"] == "analyzed"]
    if not analyzed:
        err = models[0].get("error") or {}
        rec.update(outcome="failed", stage=err.get("stage", "?"), message=_one_line(err.get("message", "")))
        return rec
    rec["outcome"] = "analyzed"
    if len(analyzed) < len(models):
        failed = [m for m in models if m["status"] != "analyzed"]
        rec["other_failures"] = [{"target": m["target"], **(m.get("error") or {})} for m in failed]
    main = max(analyzed, key=lambda m: len(m.get("layers") or []))  # the model, not its helper classes
    rec["target"] = main["target"]
    rec["layers"] = len(main.get("layers") or [])
    rec["frozen_layers"] = sum(1 for layer in main.get("layers") or [] if layer.get("frozen"))
    rec["summary"] = main.get("summary") or {}
    layers = [layer for layer in main.get("layers") or [] if not layer.get("frozen")]
    if layers:
        # The first and last weight layers' numbers: a gradient that underflows to 0.0 leaves the
        # verdict empty (a ratio of zeros), and only these show what the measurement saw.
        rec["edge_layers"] = {k: {"module": layer["module"], "type": layer["type"],
                                  "estimate": layer.get("estimate"), "measured": layer.get("measured")}
                              for k, layer in (("first", layers[0]), ("last", layers[-1]))}
    rec["findings"] = [{"code": f["code"], "severity": f.get("severity"), "message": _one_line(f["message"], 240)}
                       for f in main.get("findings") or []]
    # Findings on the file's other analyzed models (helper classes, discriminators, ...).
    rec["other_findings"] = sorted({f["code"] for m in analyzed if m is not main for f in m.get("findings") or []})
    rec["analyzed_models"] = len(analyzed)
    return rec


# -- one corpus entry ----------------------------------------------------------------------------

# Files a repository entry may need next to the model file: sources and small configs. Data,
# images and weights are left out (the mirrors may not even hold their contents).
SOURCE_SUFFIXES = (".py", ".json", ".yaml", ".yml", ".cfg", ".toml", ".ini")
_materialize_lock = threading.Lock()


def _write_tree(git_dir: Path, root: Path) -> None:
    """Write the source files of HEAD under ``root``, as in a clone (package ``__init__`` files and
    relative imports intact). Blobs that the snapshot lists but does not hold are skipped."""
    listing = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", "HEAD"],
                             capture_output=True, check=True).stdout
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, path = item.split(b"\t", 1)
        _mode, kind, sha = meta.split()
        name = path.decode(errors="replace")
        if kind != b"blob" or not name.endswith(SOURCE_SUFFIXES):
            continue
        blob = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "blob", sha.decode()], capture_output=True)
        if blob.returncode != 0:
            continue
        dest = root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(blob.stdout)


def materialize(entry: Entry, scratch: Path) -> tuple[Path, str] | str:
    """The folder to run in and the file as the user types it, or why the entry is skipped."""
    if entry.repo is None:
        path = CORPUS / entry.file
        return path.parent, path.name
    git_dir = mirror_dir(entry.repo)
    if not git_dir.exists():
        return f"no local mirror of {entry.repo} ({git_dir})"
    root = scratch / entry.repo.replace("/", "+")
    with _materialize_lock:  # once per repository, whichever entry comes first; nothing enters this repo
        if not root.exists():
            tmp = root.with_name(root.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                _write_tree(git_dir, tmp)
            except subprocess.CalledProcessError as e:
                return f"cannot read {entry.repo} at HEAD: {_one_line(e.stderr.decode(errors='replace'))}"
            tmp.rename(root)
    if not (root / entry.file).exists():
        return f"{entry.file} is not in {entry.repo} at HEAD"
    return root, entry.file


def _argv(template: tuple[str, ...], file: str) -> list[str]:
    return [a.replace("{F}", file) for a in template]


def command_text(template: tuple[str, ...] | None, file: str) -> str | None:
    if template is None:
        return None
    return "gradlint " + " ".join(shlex.quote(a) for a in _argv(template, file))


def run_entry(entry: Entry, args: argparse.Namespace, scratch: Path) -> dict:
    rec: dict = {"id": entry.id, "library": entry.library, "section": entry.section, "file": entry.file,
                 "kind": entry.kind, "style": entry.style, "expect": entry.expect, "repo": entry.repo}
    where = materialize(entry, scratch)
    if isinstance(where, str):
        rec.update(skipped=where)
        return rec
    cwd, file = where
    if entry.repo:
        rec["repo_commit"] = subprocess.run(["git", "--git-dir", str(mirror_dir(entry.repo)), "rev-parse", "--short",
                                             "HEAD"], capture_output=True, text=True).stdout.strip()
    rec["first_command"] = command_text(entry.first, file)
    rec["second_command"] = command_text(entry.second, file)
    rec["first"] = summarize_run(run_cli(_argv(entry.first, file), cwd, args))
    worked = entry.first if rec["first"]["outcome"] == "analyzed" else None
    rec["worked"] = "first" if worked else None
    if worked is None and entry.second is not None:
        rec["second"] = summarize_run(run_cli(_argv(entry.second, file), cwd, args))
        if rec["second"]["outcome"] == "analyzed":
            worked, rec["worked"] = entry.second, "second"
    if worked is not None and args.verify:
        rec["verify"] = summarize_run(run_cli([*_argv(worked, file), "--verify"], cwd, args))
    return rec


def _progress(rec: dict, done: int, total: int) -> None:
    if rec.get("skipped"):
        line = f"skipped: {rec['skipped']}"
    else:
        tries = [rec["first"]] + ([rec["second"]] if rec.get("second") else [])
        line = " -> ".join(f"{t['outcome']}" + (f" [{t.get('stage')}] {t.get('message', '')[:90]}"
                                                 if t["outcome"] != "analyzed" else "") for t in tries)
        ok = rec.get("second") if rec.get("worked") == "second" else rec["first"]
        if rec.get("worked"):
            codes = ",".join(sorted({f["code"] for f in ok.get("findings", [])})) or "-"
            line += f" | {ok['summary'].get('verdict')} {codes}"
        if rec.get("verify"):
            v = rec["verify"]
            line += f" | verify: {v['outcome']} {(v.get('summary') or {}).get('measured_verdict')}"
    with _print_lock:
        print(f"[{done}/{total}] {rec['id']}: {line}", flush=True)


# -- environment -----------------------------------------------------------------------------------

def environment(args: argparse.Namespace) -> dict:
    """Versions in the benchmark environment (asked of its interpreter) and the commit under test."""
    probe = ("import importlib.metadata as md, json, platform, sys\n"
             "names = json.loads(sys.argv[1])\n"
             "def v(n):\n"
             "    try: return md.version(n)\n"
             "    except md.PackageNotFoundError: return None\n"
             "print(json.dumps({'python': platform.python_version(), 'packages': {n: v(n) for n in names}}))\n")
    res = subprocess.run([args.python, "-c", probe, json.dumps(LIBRARIES)], capture_output=True, text=True)
    info = json.loads(res.stdout) if res.returncode == 0 else {"python": None, "packages": {}}
    root = Path(args.gradlint).resolve()
    info["gradlint_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                             text=True).stdout.strip() or None
    # The benchmark's own commits do not change gradlint: name the last commit that did.
    info["gradlint_code_commit"] = subprocess.run(["git", "log", "-1", "--format=%h", "--", "gradlint"], cwd=root,
                                                  capture_output=True, text=True).stdout.strip() or None
    info["gradlint_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--", "gradlint"], cwd=root,
                                                 capture_output=True, text=True).stdout.strip())
    info["cpus"] = os.cpu_count()
    # The CPUs are shared: a busy machine turns slow models into gradlint --timeout failures.
    info["loadavg_at_end"] = [round(x, 1) for x in os.getloadavg()]
    info["timeout_s"] = args.timeout
    info["jobs"] = args.jobs
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", help="only entry ids matching this glob (repeatable), e.g. 'monai/*'")
    p.add_argument("--timeout", type=float, default=300.0, help="wall-clock limit per gradlint run (seconds)")
    p.add_argument("--gradlint", default=str(HERE.parent), help="the gradlint checkout to test (first on PYTHONPATH)")
    p.add_argument("--python", default=DEFAULT_PYTHON, help="the benchmark environment's interpreter")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the --verify runs")
    p.add_argument("--jobs", type=int, default=1, help="entries run at the same time (each a separate process)")
    p.add_argument("--report-only", action="store_true", help="render WILD.md from wild_results.json, run nothing")
    p.add_argument("--results", default=str(RESULTS), help=argparse.SUPPRESS)
    p.add_argument("--report", default=str(REPORT), help=argparse.SUPPRESS)
    args = p.parse_args()
    check_unique()

    from wild_report import render

    results_path = Path(args.results)
    data = json.loads(results_path.read_text()) if results_path.exists() else {"models": []}
    if not args.report_only:
        if not Path(args.python).exists():
            raise SystemExit(f"wild: no interpreter at {args.python} (see benchmarks/WILD_ENV.md, or pass --python)")
        entries = [e for e in ENTRIES if not args.only or any(fnmatch.fnmatch(e.id, g) for g in args.only)]
        fresh: dict[str, dict] = {}
        scratch = Path(tempfile.mkdtemp(prefix="gradlint_wild_"))
        try:
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                futures = [pool.submit(run_entry, e, args, scratch) for e in entries]
                for fut in futures:  # in catalog order; the pool keeps `jobs` processes busy
                    rec = fut.result()
                    fresh[rec["id"]] = rec
                    _progress(rec, len(fresh), len(entries))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        order = {e.id: i for i, e in enumerate(ENTRIES)}
        merged = {r["id"]: r for r in data["models"] if r["id"] in order}
        merged.update(fresh)
        env = environment(args)
        data = {"environment": env, "verify": args.verify or data.get("verify", False),
                "models": sorted(merged.values(), key=lambda r: order[r["id"]])}
        results_path.write_text(json.dumps(data, indent=1) + "\n")
    Path(args.report).write_text(render(data))
    print(f"wild: wrote {args.report} and {results_path}")


if __name__ == "__main__":
    main()
