"""What a pre-commit hook costs: a repository of 20 model files, linted cold and then from cache.

    python benchmarks/precommit.py            # prints the figures, writes benchmarks/precommit_results.md

Measures, each in a fresh process like a hook run: the CLI's wall time and peak RSS on the first
run (no cache) and the second (unchanged files: served from the cache, torch never imported);
and, for the first run, where the time goes: importing torch, importing/building the user's
models, and gradlint's own analysis (capture, structure, rules).
Targets (issue 5): cached run < 0.5 s; first run dominated by torch import and model build.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "precommit_results.md"

TEMPLATES = {
    "mlp": """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth={depth}, width={width}):
                super().__init__()
                layers = []
                for _ in range(depth):
                    layers += [nn.Linear(width, width), nn.{act}()]
                self.body = nn.Sequential(*layers)
                self.head = nn.Linear(width, 10)

            def forward(self, x):
                return self.head(self.body(x))
    """,
    "cnn": """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth={depth}, width={width}):
                super().__init__()
                layers = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.{act}()]
                for _ in range(depth - 1):
                    layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.{act}()]
                self.features = nn.Sequential(*layers)
                self.head = nn.Linear(width, 10)

            def forward(self, x):
                return self.head(self.features(x).mean(dim=(2, 3)))


        def example_inputs():
            return (torch.randn(8, 3, 32, 32),)
    """,
    "resnet": """
        import torch
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(width)
                self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(width)

            def forward(self, x):
                return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


        class Net(nn.Module):
            def __init__(self, depth={depth}, width={width}):
                super().__init__()
                self.stem = nn.Conv2d(3, width, 3, padding=1)
                self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                self.head = nn.Linear(width, 10)

            def forward(self, x):
                return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


        def example_inputs():
            return (torch.randn(8, 3, 32, 32),)
    """,
    "transformer": """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth={depth}, width={width}):
                super().__init__()
                self.embed = nn.Embedding(1000, width)
                layer = nn.TransformerEncoderLayer(width, 4, 2 * width, batch_first=True, norm_first=True)
                self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
                self.head = nn.Linear(width, 2)

            def forward(self, ids):
                return self.head(self.encoder(self.embed(ids)).mean(dim=1))
    """,
}

ACTS = ["ReLU", "Sigmoid", "Tanh", "GELU", "SiLU"]

PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
from gradlint.config import Config
from gradlint.pipeline.run import run
from gradlint.rules import select_rules
cfg = Config()
torch_import = 0.0
if sys.argv[1] == "breakdown":
    # torch._dynamo is part of the torch import cost: meta-device kernels load it on first use.
    t = time.perf_counter(); import torch, torch._dynamo; torch_import = time.perf_counter() - t
report, session = run(sys.argv[2:], cfg, select_rules(None, [], []), use_cache=False)
stages = {}
for m in report.models:
    for k, v in m.timings.items():
        stages[k] = stages.get(k, 0.0) + v
print(json.dumps({"wall": time.perf_counter() - t0, "torch_import": torch_import, "stages": stages,
                  "models": len(report.models), "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_repo(folder: Path) -> list[str]:
    files = []
    i = 0
    for kind, template in TEMPLATES.items():
        for j in range(5):
            act = ACTS[j % len(ACTS)]
            depth = {"mlp": 4 + 4 * j, "cnn": 4 + 2 * j, "resnet": 2 + j, "transformer": 2 + j}[kind]
            src = textwrap.dedent(template).format(depth=depth, width=32, act=act).lstrip()
            path = folder / "models" / f"{kind}_{j}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(src)
            files.append(str(path.relative_to(folder)))
            i += 1
    return files


def cli_run(folder: Path, files: list[str]) -> dict:
    """The hook's command line in a fresh process: wall time and the child's peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GRADLINT_NO_CACHE", None)
    code = ("import resource, sys, runpy\n"
            "sys.argv = ['gradlint'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('gradlint', run_name='__main__')\n"
            "except SystemExit as e:\n    rc = e.code\n"
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'TORCH', 'torch' in sys.modules, file=sys.stderr)\n")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *files, "--format", "json"], cwd=folder, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("MAXRSS")][-1].split()
    return {"wall": wall, "maxrss_mb": int(line[1]) / 1024, "torch_imported": line[3] == "True",
            "models": len(json.loads(proc.stdout)["models"])}


def quick_command(*args: str) -> float:
    """Median wall time of a command that must not import torch (--help, rule)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gradlint", *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    help_time, rule_time = quick_command("--help"), quick_command("rule", "GL101")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_repo(folder)
        first = cli_run(folder, files)
        cached = [cli_run(folder, files) for _ in range(3)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-c", PROBE, "breakdown", *files], cwd=folder, env=env,
                              capture_output=True, text=True, check=True)
        breakdown = json.loads(proc.stdout.strip().splitlines()[-1])
    st = breakdown["stages"]
    user_code = st.get("load", 0) + st.get("build", 0)
    ours = sum(v for k, v in st.items() if k not in ("load", "build"))
    total = breakdown["wall"]
    cached_wall = statistics.median(c["wall"] for c in cached)
    rows = [
        ("gradlint --help: wall time (median of 5)", f"{help_time:.3f} s (target < 0.3 s)"),
        ("gradlint rule GL101: wall time (median of 5)", f"{rule_time:.3f} s (target < 0.3 s)"),
        ("files / models", f"{len(files)} / {first['models']}"),
        ("first run: wall time", f"{first['wall']:.2f} s"),
        ("first run: peak RSS", f"{first['maxrss_mb']:.0f} MB"),
        ("cached run: wall time (median of 3)", f"{cached_wall:.3f} s (target < 0.5 s)"),
        ("cached run: peak RSS", f"{max(c['maxrss_mb'] for c in cached):.0f} MB"),
        ("cached run imports torch", str(any(c["torch_imported"] for c in cached))),
        ("first run, in-process total", f"{total:.2f} s"),
        ("  importing torch (with torch._dynamo, which meta kernels load)",
         f"{breakdown['torch_import']:.2f} s ({breakdown['torch_import'] / total:.0%})"),
        ("  importing + building the user's models", f"{user_code:.2f} s ({user_code / total:.0%})"),
        ("  gradlint's analysis (capture, structure, estimate, rules)", f"{ours:.2f} s ({ours / total:.0%})"),
    ] + [(f"    {k}", f"{v:.2f} s") for k, v in sorted(st.items()) if k not in ("load", "build")]
    width = max(len(r[0]) for r in rows)
    text = "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
    print(text)
    OUT.write_text("# pre-commit benchmark\n\nGenerated by `python benchmarks/precommit.py` "
                   f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs).\n\n```\n{text}\n```\n")
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
