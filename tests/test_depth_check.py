"""--verify --depth K: a copy with K of the repeated blocks, estimated and measured, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from gradlint.cli import main

TANH_STACK = """
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.fc(x))


class Stack(nn.Module):
    def __init__(self, depth=24, width=32):
        super().__init__()
        self.stem = nn.Linear(16, width)
        self.blocks = nn.ModuleList([Block(width) for _ in range(depth)])
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def example_inputs():
    return (torch.randn(16, 16),)
"""


def run(*args):
    result = CliRunner().invoke(main, [*args, "--no-cache", "--format", "json"])
    return result.exit_code, result.stdout, result.stderr


def test_the_copy_keeps_k_blocks_and_is_measured_beside_its_estimate(write):
    path = write("stack.py", TANH_STACK)
    code, out, err = run(f"{path}::Stack", "--verify", "--depth", "3")
    model = json.loads(out)["models"][0]
    check = model["depth_check"]
    assert check["blocks"] == "blocks" and check["kept"] == 3 and check["of"] == 24 and check["block_type"] == "Block"
    assert [ly["module"] for ly in check["layers"]] == ["stem", "blocks.0.fc", "blocks.1.fc", "blocks.2.fc", "head"]
    assert check["parameters"] == 16 * 32 + 32 + 3 * (32 * 32 + 32) + 32 * 4 + 4
    # the estimate of the short copy agrees with its measurement (the point of the check)
    assert check["verdicts_agree"] is True
    assert check["attenuation_error_decades"] < 0.3 and check["median_layer_error_decades"] < 0.3
    # the full model's own estimate is still reported, and the copy is not judged by GL3xx
    assert model["summary"]["estimated_attenuation"] is not None and model["summary"]["measured_attenuation"] is None
    assert not any(f["code"].startswith("GL3") for f in model["findings"])


def test_a_model_without_repeated_blocks_is_one_clear_failure(write):
    path = write("flat.py", """
import torch
import torch.nn as nn


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))
""")
    code, out, err = run(f"{path}::Flat", "--verify", "--depth", "2")
    model = json.loads(out)["models"][0]
    gl001 = [f for f in model["findings"] if f["code"] == "GL001"]
    assert code == 1 and len(gl001) == 1 and "repeated" in gl001[0]["message"]
    assert "Traceback" not in err


def test_the_fit_check_counts_the_memory_cap_and_says_how_to_raise_it():
    """Under the worker's address-space cap (memory-limit) free machine memory is not free to the
    worker: the fit check (and so --depth's choice of K) uses what the cap leaves, and its message
    says to raise memory-limit, instead of the build dying "over the 8 GiB memory cap" midway."""
    code = r'''
import resource
import torch.nn as nn
from gradlint.ir.errors import StageError
from gradlint.verify.resources import available_bytes, cap_left_bytes, check_fits
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (96 << 20), resource.RLIM_INFINITY))
left = cap_left_bytes()
assert left is not None and left <= 96 << 20 and available_bytes("cpu") == left, (left, available_bytes("cpu"))
try:
    check_fits(nn.Linear(4096, 4096, device="meta"), "cpu", already_there=False)
except StageError as e:
    print(e.message, "|", e.hint)
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "under the memory cap" in out.stdout and "memory-limit" in out.stdout, out.stdout
