"""The cold ``gradlint FILE`` path imports neither torch._dynamo (about as long as torch itself)
nor libcst: benchmarks/startup.py measures the time, these tests hold the reasons."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ANALYSE = r"""
import sys
from gradlint.config import Config
from gradlint.pipeline import run as R, workers as W
from gradlint.rules import select_rules
W.preload()
report, _ = R.run([sys.argv[1]], Config(), select_rules(None, [], []), isolate=False)
model = report.models[0]
print(model.status, "dynamo" if "torch._dynamo" in sys.modules else "no-dynamo",
      "libcst" if "libcst" in sys.modules else "no-libcst")
"""


def _run(code: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_analysing_a_model_loads_neither_dynamo_nor_libcst():
    line = _run(ANALYSE, "examples/resnet_small.py")
    assert line.split() == ["analyzed", "no-dynamo", "no-libcst"], line


DEFERRED = r"""
import sys
import torch
from gradlint.load.build import allocation_guard
from gradlint.load.lazy_dynamo import _UntilDynamoLoads, defer_dynamo_import
assert defer_dynamo_import() > 0
guard = allocation_guard(10**6)
fn = type(guard).__dict__["__torch_dispatch__"].__closure__[0].cell_contents
assert isinstance(getattr(fn, "__dynamo_disable"), _UntilDynamoLoads)
with guard:
    torch.empty(3, device="meta") + 1  # runs through the stand-in: nothing imported
assert "torch._dynamo" not in sys.modules
import torch._dynamo  # something else loads it: the stand-in hands over to torch's real mark
with guard:
    torch.empty(3, device="meta") + 1
print(type(getattr(fn, "__dynamo_disable")).__name__)
"""


def test_the_stand_in_hands_over_to_dynamo_once_it_is_imported():
    assert _run(DEFERRED) != "_UntilDynamoLoads"
