"""What does --verify cost? Time and peak memory of gradlint's measured pass against a plain
forward+backward of the same model and batch, on the CPU.

    PYTHONPATH=. nice -n 10 python benchmarks/verify_overhead.py            # writes verify_overhead.md
    PYTHONPATH=. python benchmarks/verify_overhead.py --quick               # small batches, fewer repeats

Models: a ResNet-50-shaped CNN (bottleneck blocks 3-4-6-3, 25.6 M parameters, 224x224 images)
and a 12-layer pre-norm Transformer encoder (d=512, 8 heads, FFN 2048, 128 tokens). Both passes
use the same inputs and the same random-projection loss.

- plain: ``model.train(); loss = projection_loss(model(x)); loss.backward()``
- verify: ``gradlint.verify.passes.run_pass`` — what ``--verify`` runs per model: the hooks
  (error signal at every weight layer, activation probes, a TorchFunctionMode for functional
  activations), the backward, and the statistics read from the gradients afterwards (norms,
  zero/sign counts, log10|g| histograms), with the model's state put back.

Time: ``--repeats`` alternated runs after one warm-up each, in one process; the ratio of the
fastest runs is the headline (on a shared machine other jobs only ever add time), the ratio of
the medians is given beside it.
Memory: each (model, mode) in a fresh subprocess that builds the model and runs the one pass
(the weight-layer list comes from the parent, so no capture runs there first): the peak resident
memory during the pass above the resident memory just before it (the kernel's VmHWM, reset
before the pass). Fresh processes keep one mode's allocator caches from hiding the other's peak. Targets: time <= 1.3x, memory <= 1.5x.
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

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from gradlint.verify.measure import projection_loss  # noqa: E402
from gradlint.verify.passes import (  # noqa: E402
    LayerSpec,
    has_functional_activations,
    layer_specs,
    run_pass,
)
from gradlint.verify.resources import PeakMemory  # noqa: E402

TIME_TARGET, MEMORY_TARGET = 1.3, 1.5


# -- the models ----------------------------------------------------------------------------------

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    """torchvision's resnet50 layout (25,557,032 parameters), written out: torchvision is not a
    dependency of gradlint's test environment."""

    def __init__(self, classes: int = 1000, layers=(3, 4, 6, 3)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 64
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


class Transformer12(nn.Module):
    """A 12-layer pre-norm encoder over token ids, with a tied-free LM head."""

    def __init__(self, vocab: int = 8000, d: int = 512, heads: int = 8, ffn: int = 2048, layers: int = 12,
                 max_len: int = 512):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d))
        layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.1, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        h = self.tok(ids) + self.pos[:, : ids.shape[1]]
        return self.head(self.norm(self.encoder(h)))


def build(name: str, quick: bool):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "resnet50":
        batch = 2 if quick else 8
        return ResNet50(), (torch.randn(batch, 3, 224, 224, generator=g),), f"batch {batch}, 3x224x224"
    batch, seq = (2, 64) if quick else (8, 128)
    return Transformer12(), (torch.randint(0, 8000, (batch, seq), generator=g),), f"batch {batch}, {seq} tokens"


def specs(model, args):
    """The weight layers --verify measures and whether it watches functional activations, from
    gradlint's own capture (as the verify stage does)."""
    import gradlint

    report = gradlint.analyze(model, args, verify=False, select=["GL001"])
    if report.status != "analyzed":
        raise SystemExit(f"capture failed: {report.error}")
    graph = report.graph
    return layer_specs(graph), has_functional_activations(graph)


def plain(model, args, seed=0):
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = model(*args)
    projection_loss([out], seed).backward()
    del out
    model.zero_grad(set_to_none=True)


def verify(model, args, spec, seed=0):
    layers, functional = spec
    return run_pass(model, args, {}, layers, seed=seed, functional_activations=functional)


# -- one measurement per subprocess (memory) -------------------------------------------------------

def memory_child(name: str, mode: str, quick: bool, spec_file: str) -> None:
    model, args, _ = build(name, quick)
    # the layer list comes from the parent: capturing here would run (and cache) a forward first
    data = json.loads(Path(spec_file).read_text())
    spec = ([LayerSpec(d["module"], d["type"], None, d["weights"], d["embedding"]) for d in data["layers"]],
            data["functional"])
    with PeakMemory("cpu") as pm:
        if mode == "plain":
            plain(model, args)
        else:
            verify(model, args, spec)
    print(json.dumps({"peak": pm.peak, "method": pm.method}))


def memory(name: str, mode: str, quick: bool, spec) -> tuple[int, str]:
    import tempfile

    layers, functional = spec
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"functional": functional, "layers": [{"module": s.module, "type": s.type, "weights": list(s.weights),
                                                         "embedding": s.embedding} for s in layers]}, f)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, __file__, "--child", name, mode, f.name] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    finally:
        os.unlink(f.name)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["peak"], out["method"]


# -- timing in this process ------------------------------------------------------------------------

def timing(name: str, repeats: int, quick: bool) -> tuple[dict, tuple]:
    """(results, the weight-layer spec the verify pass used)"""
    model, args, shape = build(name, quick)
    layers = specs(model, args)
    plain(model, args)  # warm-up: allocator, threads, lazy initialization
    m = verify(model, args, layers)
    t_plain, t_verify, fb, stats = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        plain(model, args)
        t_plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        m = verify(model, args, layers)
        t_verify.append(time.perf_counter() - t0)
        fb.append(m.forward_backward_s)
        stats.append(m.statistics_s)
    return {
        "model": name, "inputs": shape, "parameters": sum(p.numel() for p in model.parameters()),
        "weight_layers": len(layers[0]), "activation_sites": len(m.activations),
        "plain_s": min(t_plain), "verify_s": min(t_verify),
        "median_ratio": statistics.median(t_verify) / statistics.median(t_plain),
        "verify_forward_backward_s": min(fb), "verify_statistics_s": min(stats),
        "measured_verdict": m.verdict, "measured_attenuation": m.attenuation,
        "plain_runs": t_plain, "verify_runs": t_verify,
    }, layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small batches and 2 repeats (a smoke test)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--models", default="resnet50,transformer12")
    ap.add_argument("--out", default=str(HERE / "verify_overhead.md"))
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "MODE", "SPECS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        memory_child(a.child[0], a.child[1], a.quick, a.child[2])
        return
    repeats = a.repeats or (2 if a.quick else 5)
    rows = []
    for name in a.models.split(","):
        r, spec = timing(name, repeats, a.quick)
        r["plain_peak"], r["memory_method"] = memory(name, "plain", a.quick, spec)
        r["verify_peak"], _ = memory(name, "verify", a.quick, spec)
        r["time_ratio"] = r["verify_s"] / r["plain_s"]
        r["memory_ratio"] = r["verify_peak"] / r["plain_peak"] if r["plain_peak"] else float("nan")
        rows.append(r)
        print(f"{name}: time {r['plain_s']:.2f} s -> {r['verify_s']:.2f} s ({r['time_ratio']:.2f}x); peak memory "
              f"{r['plain_peak'] / 2**20:.0f} -> {r['verify_peak'] / 2**20:.0f} MiB ({r['memory_ratio']:.2f}x)",
              flush=True)
    write_report(Path(a.out), rows, repeats, a.quick)
    print(f"wrote {a.out}")


def write_report(path: Path, rows: list, repeats: int, quick: bool) -> None:
    lines = [
        "# --verify overhead (CPU)", "",
        f"Generated by `benchmarks/verify_overhead.py{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}: torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs visible (shared with other jobs).", "",
        f"Time: fastest of {repeats} alternated runs after a warm-up (the ratio of medians in brackets). "
        "Peak memory: peak resident memory during the pass above the resident memory before it, each "
        f"in a fresh process that only builds the model first ({rows[0]['memory_method'] if rows else ''}). "
        f"Targets: time <= {TIME_TARGET}x, memory <= {MEMORY_TARGET}x.", "",
        "| model | inputs | parameters | weight layers | plain f+b | --verify pass | time ratio | "
        "plain peak | --verify peak | memory ratio | measured verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok_t = "ok" if r["time_ratio"] <= TIME_TARGET else "OVER"
        ok_m = "ok" if r["memory_ratio"] <= MEMORY_TARGET else "OVER"
        lines.append(
            f"| {r['model']} | {r['inputs']} | {r['parameters'] / 1e6:.1f} M | {r['weight_layers']} | "
            f"{r['plain_s']:.2f} s | {r['verify_s']:.2f} s (f+b {r['verify_forward_backward_s']:.2f} s, "
            f"statistics {r['verify_statistics_s']:.2f} s) | **{r['time_ratio']:.2f}x** {ok_t} "
            f"({r['median_ratio']:.2f}x) | "
            f"{r['plain_peak'] / 2**20:.0f} MiB | {r['verify_peak'] / 2**20:.0f} MiB | "
            f"**{r['memory_ratio']:.2f}x** {ok_m} | {r['measured_verdict']} ({r['measured_attenuation']:.2e}) |")
    lines += ["", "Raw runs (seconds):", ""]
    for r in rows:
        lines.append(f"- {r['model']}: plain {', '.join(f'{t:.2f}' for t in r['plain_runs'])}; "
                     f"verify {', '.join(f'{t:.2f}' for t in r['verify_runs'])}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
