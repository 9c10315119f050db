"""--verify --depth K: a copy with K of the repeated blocks, estimated and measured, end to end."""

from __future__ import annotations

import json

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
