"""What a cold ``gradlint FILE`` costs beyond importing torch, isolation included.

    python benchmarks/startup.py                       # writes benchmarks/STARTUP.md
    python benchmarks/startup.py --baseline /work/main # also the same figures for another checkout

Each pair runs ``python -c "import torch"`` and ``gradlint examples/resnet_small.py --no-cache`` in
fresh processes, back to back (the order alternates), and takes the ratio of their wall times;
the figure is the median of the pairs' ratios (the machine is shared: a ratio measured within a
pair cancels most of its load). Target (issue 12): <= 1.5x. One unmeasured run of each command
comes first, with ``PYTHONDONTWRITEBYTECODE`` dropped, so both are measured with their bytecode
caches written, as a user's second run has them. ``--baseline`` runs another checkout
of gradlint (``PYTHONPATH``) in the same pairs, so before and after are measured together.

Then, in one process, where the time goes: importing torch, gradlint's analysis modules, the
warm-up, forking the worker, and the worker's analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "STARTUP.md"
MODEL = "examples/resnet_small.py"


def _timed(argv: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def _env(checkout: Path | None = None) -> dict:
    # Bytecode caches as a user has them: pip writes torch's at install, and Python writes
    # gradlint's on its first run. PYTHONDONTWRITEBYTECODE (set on some CI machines and
    # containers) would make every run compile gradlint's sources again and measure that instead.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if checkout is not None:
        env.update(PYTHONPATH=str(checkout), GRADLINT_NO_CACHE="1")
    return env


def pairs(runs: int, checkouts: dict[str, Path]) -> dict[str, list[tuple[float, float]]]:
    """name -> [(import torch, gradlint)] seconds, one pair per run per checkout."""
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    torch_cmd = [sys.executable, "-c", "import torch"]
    lint = {name: [sys.executable, "-P", "-m", "gradlint", MODEL, "--no-cache"] for name in checkouts}
    for name, checkout in checkouts.items():  # not measured: writes the bytecode caches, fills the page cache
        _timed(torch_cmd, _env())
        _timed(lint[name], _env(checkout))
    for i in range(runs):
        for name, checkout in checkouts.items():
            lint_cmd = lint[name]  # -P: PYTHONPATH picks the checkout
            if i % 2 == 0:
                t, g = _timed(torch_cmd, _env()), _timed(lint_cmd, _env(checkout))
            else:
                g, t = _timed(lint_cmd, _env(checkout)), _timed(torch_cmd, _env())
            out[name].append((t, g))
            print(f"  run {i + 1}/{runs} {name}: import torch {t:.2f} s, gradlint {g:.2f} s, ratio {g / t:.2f}",
                  file=sys.stderr)
    return out


BREAKDOWN = r"""
import json, os, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from gradlint.config import Config
from gradlint.pipeline import run as R, workers as W
from gradlint.rules import select_rules
t2 = time.perf_counter()
W.preload()  # what run() does for one file: imports, no warm-up analysis
t3 = t4 = t5 = time.perf_counter()
report, _ = R.run([sys.argv[1]], Config(), select_rules(None, [], []), isolate=True)
t6 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "gradlint modules": t2 - t1, "preload (fx, capture, estimate, rules)": t3 - t2,
                  "worker (fork, analysis, result)": t6 - t5,
                  "analysis inside the worker": sum(report.models[0].timings.values())}))
"""


def breakdown(checkout: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-P", "-c", BREAKDOWN, MODEL], cwd=ROOT, env=_env(checkout), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="another gradlint checkout to measure in the same pairs")
    args = ap.parse_args()
    checkouts = {"this branch": ROOT}
    if args.baseline:
        checkouts["baseline"] = args.baseline.resolve()
    print(f"{args.runs} paired runs of `import torch` and `gradlint {MODEL} --no-cache`...", file=sys.stderr)
    measured = pairs(args.runs, checkouts)
    parts = breakdown(ROOT)

    def commit(path: Path) -> str:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True)
        return r.stdout.strip() or "?"

    lines = [
        "# Cold start",
        "",
        f"Generated by `python benchmarks/startup.py{' --baseline ' + str(args.baseline) if args.baseline else ''}` "
        f"(Python {platform.python_version()}, {os.cpu_count()} CPUs, shared machine; load average at the end "
        f"{os.getloadavg()[0]:.1f}).",
        "",
        f"`gradlint {MODEL} --no-cache` against `python -c \"import torch\"`, fresh processes, {args.runs} "
        "pairs; the ratio is the median of the per-pair ratios (target <= 1.5x). One unmeasured run of each "
        "comes first and PYTHONDONTWRITEBYTECODE is dropped, so both run with their bytecode caches written, "
        "as on a user's second run (with that variable set, an editable install compiles gradlint's "
        "sources on every run: about 0.1-0.2 s more).",
        "",
        "| checkout | commit | import torch (median) | gradlint (median) | ratio (median of pairs) | ratios |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in measured.items():
        ratios = [g / t for t, g in rows]
        lines.append(f"| {name} | {commit(checkouts[name])} | {statistics.median(t for t, _ in rows):.2f} s | "
                     f"{statistics.median(g for _, g in rows):.2f} s | **{statistics.median(ratios):.2f}x** | "
                     f"{', '.join(f'{r:.2f}' for r in ratios)} |")
    lines += ["", "Where the time goes (this branch, one process):", "", "```"]
    width = max(len(k) for k in parts)
    for key, seconds in parts.items():
        lines.append(f"{key:<{width}}  {seconds:6.2f} s")
    lines.append("```")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
