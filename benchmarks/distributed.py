"""Past one machine: the sharded ``--verify`` against one process, and ``--depth K`` on models too
large to measure whole. Writes ``benchmarks/DISTRIBUTED.md`` and ``benchmarks/distributed_results.json``.

1. A model that fits (a Llama-style decoder, 8 layers x 512): ``gradlint --verify`` in one process
   and under ``torchrun --nproc-per-node 2`` (gloo, CPU), each a fresh command: wall time, the
   pass's forward+backward time, the largest per-process peak RSS, and the largest per-layer
   difference in gradient RMS between the two.
2. Models that fit nowhere here: the 80-layer, 8192-wide Llama (own definition, and transformers'
   LlamaForCausalLM), vocabulary cut to 1024 (the width is kept), with ``--depth K`` for the largest
   K whose weights and gradients fit in this machine's free memory (K is lowered until gradlint's
   own fit check accepts it): the copy's estimate against its measurement.

    PYTHONPATH=. python benchmarks/distributed.py [--skip-big]
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "DISTRIBUTED.md"
RESULTS = HERE / "distributed_results.json"
sys.path.insert(0, str(HERE))

from speed import MODELS  # noqa: E402 - the Llama definitions the speed benchmark uses

EXTRA = '''

def small_llama():
    return LlamaStyle(layers=8, d=512, heads=8, kv_heads=4, ff=1376, vocab=1000)


def llama_80x8192():
    return LlamaStyle(layers=80, d=8192, heads=64, kv_heads=8, ff=28672, vocab=1024)


def hf_llama_80x8192():
    import transformers as tf

    cfg = tf.LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                         num_key_value_heads=8, vocab_size=1024, max_position_embeddings=4096)
    return tf.LlamaForCausalLM(cfg)
'''


def run(cmd: list[str], env: dict | None = None) -> tuple[int, str, str, float, int]:
    """(exit code, stdout, stderr, wall seconds, the largest descendant's peak RSS in bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return p.returncode, p.stdout, p.stderr, wall, peak if peak > before * 1024 else 0


def gradlint(target: str, *args: str, ranks: int = 0) -> list[str]:
    base = ["-m", "gradlint", target, "--verify", "--no-cache", *args]
    if ranks:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *base]
    return [sys.executable, *base]


def fits(path: str) -> dict:
    target = f"{path}::small_llama"
    out = {}
    for name, ranks in (("one process", 0), ("torchrun, 2 ranks (gloo)", 2)):
        rc, so, se, wall, peak = run(gradlint(target, "--format", "json", "--exit-zero", ranks=ranks),
                                     env={"OMP_NUM_THREADS": "1"})
        if rc:
            raise SystemExit(f"{name} failed ({rc}): {se[-2000:]}")
        rep = json.loads(so)
        rc2, full, _, _, _ = run(gradlint(target, "--format", "full", "--exit-zero", ranks=ranks),
                                 env={"OMP_NUM_THREADS": "1"})
        fb = re.search(r"forward\+backward ([0-9.]+) s", full)
        pm = re.search(r"peak memory \+([0-9.]+) (MiB|GiB)", full)
        out[name] = {"wall_s": wall, "peak_rss_bytes": peak, "run": rep.get("run"),
                     "forward_backward_s": float(fb.group(1)) if fb else None,
                     "pass_peak": f"{pm.group(1)} {pm.group(2)}" if pm else None,
                     "layers": {ly["module"]: ly["measured"]["grad_rms"] for ly in rep["models"][0]["layers"]},
                     "parameters": None}
    a, b = out["one process"]["layers"], out["torchrun, 2 ranks (gloo)"]["layers"]
    out["max_rel_diff_grad_rms"] = max(abs(b[k] / a[k] - 1) for k in a if a[k])
    out["layers"] = len(a)
    return out


def depth(path: str, factory: str, start: int) -> dict:
    for k in range(start, 0, -1):
        # --memory-limit 0: the worker's default 8 GiB address-space cap is below one 8192-wide block
        rc, so, se, wall, peak = run(gradlint(f"{path}::{factory}", "--depth", str(k), "--format", "json",
                                              "--exit-zero", "--batch-size", "2", "--timeout", "3000",
                                              "--memory-limit", "0"))
        rep = json.loads(so) if so.strip() else {"models": [{}]}
        model = rep["models"][0]
        if model.get("depth_check"):
            check = dict(model["depth_check"])
            check.update(wall_s=wall, peak_rss_bytes=peak, full_estimate=model["summary"]["estimated_attenuation"],
                         full_verdict=model["summary"]["verdict"], tried_from=start)
            return check
        msg = (model.get("error") or {}).get("message") or " ".join(
            f["message"] for f in model.get("findings", []) if f["code"] == "GL001") or se[-500:]
        print(f"  K={k}: {msg}", flush=True)
        if "free" not in msg:
            return {"error": msg, "K": k}
    return {"error": "no K fits"}


def render(res: dict) -> str:
    f = res["fits"]
    one, two = f["one process"], f["torchrun, 2 ranks (gloo)"]
    lines = ["# Distributed verification", "",
             f"`python benchmarks/distributed.py` on {res['machine']} (shared, loaded), torch {res['torch']}, "
             f"{res['date']}. No GPU here: every run is gloo on the CPU; NCCL paths are untested.", "",
             "## A model that fits: one process against torchrun", "",
             f"Llama-style decoder, 8 layers x 512 wide (`small_llama`), batch 8 x 16 tokens, "
             f"{f['layers']} weight layers. Each column is a fresh `gradlint --verify` command.", "",
             "| | one process | torchrun, 2 ranks (gloo) | ratio |", "|---|---|---|---|"]

    def row(name: str, a: float | None, b: float | None, fmt: str) -> None:
        ratio = f"{b / a:.2f}x" if a and b else "-"
        lines.append(f"| {name} | {fmt.format(a) if a is not None else '-'} | {fmt.format(b) if b is not None else '-'} | {ratio} |")

    row("wall time of the command (s)", one["wall_s"], two["wall_s"], "{:.1f}")
    row("forward+backward of the pass (s; 2 ranks: the slowest)", one["forward_backward_s"], two["forward_backward_s"], "{:.2f}")
    row("peak RSS of the largest process (MiB)", one["peak_rss_bytes"] / 2**20, two["peak_rss_bytes"] / 2**20, "{:.0f}")
    lines += ["", f"Pass peak memory above its start: {one['pass_peak']} (one process), {two['pass_peak']} "
              "(the larger rank).", "",
              f"Largest per-layer difference in gradient RMS between the two runs: {f['max_rel_diff_grad_rms']:.1e} "
              "(relative; the sharded run sums the same gradients in another order). The whole-process RSS includes "
              "torch's import and gradlint's static analysis, which every rank repeats; at this size sharding "
              "saves little and two processes on two shared cores cost time.", "",
              "## Models that fit nowhere here: `--depth K`", "",
              "80 layers x 8192 wide (64 heads, 8 KV heads, MLP 28672), vocabulary cut to 1024 (the width is "
              "kept); one layer holds 0.86 B parameters, 6.8 GB of float32 weights and gradients. K is the "
              "largest number of blocks gradlint's fit check accepts in this machine's free memory (it starts "
              "higher and steps down). Batch 2 x 16 tokens.", ""]
    for name, c in res["depth"].items():
        if "error" in c:
            lines += [f"- **{name}**: failed: {c['error']}", ""]
            continue
        lines += [f"**{name}** (`{c['blocks']}`, {c['of']} x {c['block_type']}): K = {c['kept']} "
                  f"({c['parameters']:,} parameters), tried from K = {c['tried_from']} down.", "",
                  "| | estimate | measured |", "|---|---|---|",
                  f"| attenuation of the copy | {c['estimated_attenuation']:.3g} ({c['estimated_verdict']}) | "
                  f"{c['measured_attenuation']:.3g} ({c['measured_verdict']}) |", "",
                  f"Verdicts {'agree' if c['verdicts_agree'] else 'disagree'}; attenuation off by "
                  f"{c['attenuation_error_decades']:.2f} decades; per layer median {c['median_layer_error_decades']:.2f}, "
                  f"max {c['max_layer_error_decades']:.2f} decades. The full 80-layer estimate: "
                  f"{c['full_estimate']:.3g} ({c['full_verdict']}). Command: {c['wall_s']:.0f} s, peak RSS "
                  f"{c['peak_rss_bytes'] / 2**30:.1f} GiB.", "",
                  "| layer | estimate | measured |", "|---|---|---|"]
        lines += [f"| {ly['module']} | {ly['estimate']:.3g} | {ly['measured']:.3g} |" for ly in c["layers"]
                  if ly["estimate"] is not None and ly["measured"] is not None]
        lines.append("")
    lines += ["What it says about the full-depth claim: the depth check shows how well the estimate's per-layer "
              "factors hold for the first K blocks with the real init; it does not measure the 80-layer product. "
              "The full estimate multiplies the same per-block factors over 80 blocks, so an error of e decades "
              "per block would grow to about 80/K times the copy's error at full depth.", ""]
    return "\n".join(lines)


def main() -> None:
    import torch

    skip_big = "--skip-big" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "llamas.py")
        Path(path).write_text(MODELS + EXTRA, encoding="utf-8")
        res = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d")}
        print("fits: one process vs torchrun", flush=True)
        res["fits"] = fits(path)
        res["depth"] = {}
        if not skip_big:
            for name, factory in (("Llama-style, own definition", "llama_80x8192"),
                                  ("transformers LlamaForCausalLM", "hf_llama_80x8192")):
                print(f"depth: {name}", flush=True)
                res["depth"][name] = depth(path, factory, 3)
        elif RESULTS.exists():
            res["depth"] = json.loads(RESULTS.read_text()).get("depth", {})
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    OUT.write_text(render(res))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
