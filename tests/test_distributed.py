"""Past one machine, tested on the CPU with gloo: torchrun started from the test with 2 ranks.

No GPU is available in CI, so NCCL's code paths (device selection, backend) are not exercised here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is needed")

MODEL = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, d=31):
            super().__init__()
            self.fc = nn.Linear(d, d)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(self.fc(x))


    class Net(nn.Module):
        def __init__(self, depth=6, d=31, fail_on_rank=None):
            super().__init__()
            self.inp = nn.Linear(16, d)
            self.relu = nn.ReLU()
            self.blocks = nn.ModuleList([Block(d) for _ in range(depth)])
            self.head = nn.Linear(d, 5)
            self.fail_on_rank = fail_on_rank

        def forward(self, x):
            import torch.distributed as dist
            real = type(x) is torch.Tensor and not x.is_meta  # the measured pass, not the capture
            if real and self.fail_on_rank is not None and dist.is_initialized() and dist.get_rank() == self.fail_on_rank:
                raise RuntimeError("this rank's forward failed on purpose")
            x = self.relu(self.inp(x))
            for b in self.blocks:
                x = b(x)
            return self.head(x)
''')


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "GRADLINT_NO_CACHE": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def torchrun(args: list[str], cwd: Path, timeout: float = 300, ranks: int = 2) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *args]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env())
    return p, time.monotonic() - t0


def gradlint_once(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=_env())


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    (tmp_path / "net.py").write_text(MODEL, encoding="utf-8")
    return tmp_path / "net.py"


def test_sharded_verify_equals_the_one_process_run(model_file: Path):
    args = ["net.py::Net", "--verify", "--format", "json", "--exit-zero"]
    one = gradlint_once(args, model_file.parent)
    assert one.returncode == 0, one.stderr
    p, _ = torchrun(["-m", "gradlint", *args], model_file.parent)
    assert p.returncode == 0, p.stderr[-3000:]
    two = json.loads(p.stdout)  # one JSON document: only rank 0 wrote the report
    single = json.loads(one.stdout)
    assert two["run"] == {"world_size": 2, "backend": "gloo", "sharding": "fsdp2", "weights": "init-once"}
    assert "run" not in single
    a, b = single["models"][0], two["models"][0]
    assert [ly["module"] for ly in a["layers"]] == [ly["module"] for ly in b["layers"]]
    for x, y in zip(a["layers"], b["layers"]):
        for key in ("grad_rms", "grad_norm", "grad_ratio"):
            assert math.isclose(x["measured"][key], y["measured"][key], rel_tol=0.01), (x["module"], key)
    assert a["summary"]["measured_verdict"] == b["summary"]["measured_verdict"]
    assert sorted(f["code"] for f in a["findings"]) == sorted(f["code"] for f in b["findings"])


def test_a_batch_the_ranks_cannot_split_is_one_line_on_every_rank(model_file: Path):
    p, took = torchrun(["-m", "gradlint", "net.py::Net", "--verify", "--batch-size", "7", "--format", "json",
                        "--timeout", "60"], model_file.parent)
    assert p.returncode == 1, p.stderr[-3000:]
    model = json.loads(p.stdout)["models"][0]
    gl001 = [f for f in model["findings"] if f["code"] == "GL001"]
    assert len(gl001) == 1
    assert "batch of 7 does not split evenly across 2 ranks" in gl001[0]["message"]
    assert "Traceback" not in p.stdout


def test_a_failing_rank_takes_the_others_down_within_the_timeout(model_file: Path):
    p, took = torchrun(["-m", "gradlint", "net.py::Net(fail_on_rank=1)", "--verify", "--timeout", "30"],
                       model_file.parent, timeout=240)
    assert p.returncode != 0
    assert "rank 1 of 2" in p.stderr and "this rank's forward failed on purpose" in p.stderr
    assert took < 200  # the other rank did not wait forever


def test_measure_on_ddp_and_fsdp2_models_equals_one_process(tmp_path: Path):
    sys.path.insert(0, str(DATA))
    try:
        import dist_measure
    finally:
        sys.path.remove(str(DATA))
    import gradlint

    model, x = dist_measure.model_and_batch()
    reference = dist_measure.record(gradlint.measure(model, x))
    p, _ = torchrun([str(DATA / "dist_measure.py"), str(tmp_path / "out")], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    for rank in (0, 1):
        got = json.loads((tmp_path / f"out.{rank}.json").read_text())
        for kind in ("ddp", "fsdp2"):
            r = got[kind]
            assert [ly[0] for ly in r["layers"]] == [ly[0] for ly in reference["layers"]]
            for (name, ratio, zeros, hist, delta), ref in zip(r["layers"], reference["layers"]):
                assert math.isclose(ratio, ref[1], rel_tol=0.01), (kind, name)
                assert zeros == ref[2] and hist == ref[3], (kind, name)
                assert math.isclose(delta, ref[4], rel_tol=0.01), (kind, name)
            assert r["activations"] == reference["activations"], kind  # dead units counted over the whole batch
            assert r["verdict"] == reference["verdict"]
            assert any(f"2 ranks ({kind}, gloo)" in n for n in r["notes"])
    assert json.loads((tmp_path / "out.0.json").read_text()) == json.loads((tmp_path / "out.1.json").read_text())
