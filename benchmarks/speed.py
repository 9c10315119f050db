"""Speed of the analysis on the meta device: a 1000-layer MLP, a ResNet-152 and a Llama-style
80-layer, 8192-wide decoder, each in a fresh process (so peak RSS is that model's).

Reported per model: import, build (meta), capture, estimate, rules, and the analysis beyond import
and build (capture + estimate + rules), peak RSS, and the estimate's cost per graph node. Targets
(issue 3): < 1 s, < 2 s, < 10 s of analysis; < 2 GB peak RSS for the 80-layer model; cost linear
in graph size (the MLP at 250 / 500 / 1000 / 2000 layers). Writes ``benchmarks/SPEED.md``.

    python benchmarks/speed.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "SPEED.md"

MODELS = """
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class DeepMLP(nn.Module):
    def __init__(self, depth=1000, width=256):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet152(nn.Module):
    def __init__(self, layers=(3, 8, 36, 3), classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for i, n in enumerate(layers):
            for j in range(n):
                blocks.append(Bottleneck(cin, 64 * 2 ** i, 2 if (j == 0 and i > 0) else 1))
                cin = 64 * 2 ** i * 4
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class LlamaBlock(nn.Module):
    def __init__(self, d, heads, kv_heads, ff):
        super().__init__()
        self.heads, self.kv, self.hd = heads, kv_heads, d // heads
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.gate, self.up = nn.Linear(d, ff, bias=False), nn.Linear(d, ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.kv, self.hd).transpose(1, 2).repeat_interleave(self.heads // self.kv, 1)
        v = self.v(h).view(b, t, self.kv, self.hd).transpose(1, 2).repeat_interleave(self.heads // self.kv, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(a)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class LlamaStyle(nn.Module):
    def __init__(self, layers=80, d=8192, heads=64, kv_heads=8, ff=28672, vocab=32000):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([LlamaBlock(d, heads, kv_heads, ff) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x)
        return self.lm_head(self.norm(x))


def hf_llama_80():
    import transformers as tf

    cfg = tf.LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                         num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096)
    return tf.LlamaForCausalLM(cfg)
"""

CASES = [
    # (name, target, target seconds, rss limit MB)
    ("MLP, 1000 layers x 256", "DeepMLP", 1.0, None),
    ("ResNet-152 (own definition, 224x224)", "ResNet152", 2.0, None),
    ("Llama-style, 80 layers x 8192 (own definition, fx)", "LlamaStyle", 10.0, 2048),
    ("Llama 80 x 8192 (transformers LlamaForCausalLM)", "hf_llama_80", 10.0, 2048),
]
SCALING = [("MLP, 250 layers", "DeepMLP(depth=250)"), ("MLP, 500 layers", "DeepMLP(depth=500)"),
           ("MLP, 1000 layers", "DeepMLP(depth=1000)"), ("MLP, 2000 layers", "DeepMLP(depth=2000)")]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[3])
import torch
import torch._dynamo  # part of torch's import cost: meta-device kernels load it on first use
from gradlint.config import Config
from gradlint.load.build import build_model
from gradlint.load.discover import load_file
from gradlint.pipeline.run import Session, analyze_built
from gradlint.rules import select_rules
from gradlint.load.targets import parse_target
t_import = time.perf_counter() - t0
config = Config(materialize_limit=0)  # the meta device: shapes and init formulas only
session = Session(config, select_rules(None, [], []))
target = parse_target(sys.argv[1] + "::" + sys.argv[2])
loaded = load_file(target)
t1 = time.perf_counter()
built = build_model(loaded.candidates[0], config.materialize_limit)
t_build = time.perf_counter() - t1
report = analyze_built(built, loaded, session)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
graph = report.graph
print(json.dumps({"import": t_import, "build": t_build, "timings": report.timings, "status": report.status,
                  "error": report.error, "nodes": len(graph) if graph is not None else None,
                  "layers": len(report.layers), "verdict": report.summary.verdict,
                  "attenuation": report.summary.estimated_attenuation, "capture": report.capture,
                  "materialized": built.materialized, "rss_mb": rss,
                  "errors": session.internal_errors}))
"""


def run(model_file: Path, target: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model_file), target, str(ROOT)], capture_output=True,
                          text=True, env=env, timeout=1800)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return {"status": "failed", "error": (proc.stderr or proc.stdout)[-500:]}


def main() -> int:
    model_file = HERE / "_speed_models.py"
    model_file.write_text(MODELS, encoding="utf-8")
    try:
        rows, scaling = [], []
        for name, target, limit, rss_limit in CASES:
            r = run(model_file, target)
            rows.append((name, r, limit, rss_limit))
            print(name, json.dumps(r)[:400], flush=True)
        for name, target in SCALING:
            r = run(model_file, target)
            scaling.append((name, r))
            print(name, json.dumps(r)[:300], flush=True)
    finally:
        model_file.unlink(missing_ok=True)
    lines = ["# Estimator speed", "", "Generated by `benchmarks/speed.py`; do not edit. Each model is built on the "
             "meta device (no weights: shapes and PyTorch's init formulas) and analysed by `gradlint`'s pipeline "
             "in a fresh process with the default rules.", "",
             f"Environment: Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs "
             "(shared with other jobs while this ran; times are wall-clock).", "",
             "| model | graph nodes | capture | estimate | rules | analysis beyond import and build (target) | "
             "build (meta) | import | peak RSS (target) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r, limit, rss_limit in rows:
        if r.get("status") != "analyzed":
            lines.append(f"| {name} | - | - | - | - | failed: {str(r.get('error'))[:120]} | | | | |")
            continue
        t = r["timings"]
        analysis = t.get("capture", 0) + t.get("structure", 0) + t.get("estimate", 0) + t.get("rules", 0)
        ok = "met" if analysis < limit else "MISSED"
        rss_txt = f"{r['rss_mb']:.0f} MB" + (f" (< {rss_limit} MB: {'met' if r['rss_mb'] < rss_limit else 'MISSED'})"
                                               if rss_limit else "")
        lines.append(f"| {name} | {r['nodes']} | {t.get('capture', 0):.2f} s ({r['capture']}) | {t.get('estimate', 0):.2f} s "
                     f"| {t.get('rules', 0):.2f} s | **{analysis:.2f} s** (< {limit:g} s: {ok}) | {r['build']:.2f} s | "
                     f"{r['import']:.2f} s | {rss_txt} | {r['verdict']} ({r['attenuation']:.1e}) |")
    lines += ["", "## Linear in graph size", "", "| model | graph nodes | estimate | estimate per node | capture |",
              "|---|---|---|---|---|"]
    for name, r in scaling:
        if r.get("status") != "analyzed":
            lines.append(f"| {name} | failed | | | |")
            continue
        t = r["timings"]
        lines.append(f"| {name} | {r['nodes']} | {t['estimate']:.3f} s | {1e6 * t['estimate'] / r['nodes']:.0f} us | "
                     f"{t['capture']:.2f} s |")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"{time.perf_counter() - start:.0f} s")
    sys.exit(code)
