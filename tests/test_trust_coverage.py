"""Coverage you can see: weights held by custom modules and bare parameters, torch.jit.script
submodules, frozen parameters, weight norm / spectral norm / parametrizations. Each model is a
weight layer list that must be complete and an estimate that must match the measurement."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
from helpers import analyze_path, estimate_and_measurement, log_errors

from gradlint.config import Config

HEADER = """
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

MODELS = {
    # weights as bare parameters of the model itself
    "raw_parameters": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(64, 128) * math.sqrt(2 / 64))
        self.w2 = nn.Parameter(torch.randn(128, 128) * math.sqrt(2 / 128))
        self.w3 = nn.Parameter(torch.randn(128, 10) / math.sqrt(128))

    def forward(self, x):
        x = torch.relu(x @ self.w1)
        x = torch.relu(x @ self.w2)
        return x @ self.w3


def example_inputs():
    return (torch.randn(16, 64),)
""", ["w1", "w2", "w3"]),
    # a ParameterList: each parameter a layer of its own
    "parameter_list": ("""
class Net(nn.Module):
    def __init__(self, depth=4):
        super().__init__()
        self.ws = nn.ParameterList([nn.Parameter(torch.randn(64, 64) * math.sqrt(2 / 64)) for _ in range(depth)])
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        for w in self.ws:
            x = torch.relu(F.linear(x, w))
        return self.head(x)


def example_inputs():
    return (torch.randn(16, 64),)
""", ["ws.0", "ws.1", "ws.2", "ws.3", "head"]),
    # custom modules calling F.conv2d / F.linear on their own parameters
    "functional_modules": ("""
class MyConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(cout, cin, 3, 3) * math.sqrt(2.0 / (cin * 9)))
        self.b = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return F.conv2d(x, self.kernel, self.b, padding=1)


class Attn(nn.Module):
    # one module, four weights used in four calls: one layer over all of them
    def __init__(self, d=16):
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Parameter(torch.randn(d, d) / d ** 0.5) for _ in range(4))

    def forward(self, x):
        q, k, v = x @ self.wq, x @ self.wk, x @ self.wv
        a = torch.softmax(q @ k.transpose(-1, -2) / 4, dim=-1)
        return (a @ v) @ self.wo


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([MyConv(3 if i == 0 else 16, 16) for i in range(4)])
        self.attn = Attn()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        for c in self.convs:
            x = F.relu(c(x))
        t = x.flatten(2).transpose(1, 2)
        t = t + self.attn(t)
        return self.fc(t.mean(1))


def example_inputs():
    return (torch.randn(8, 3, 8, 8),)
""", ["convs.0", "convs.1", "convs.2", "convs.3", "attn", "fc"]),
    # torch.jit.script-ed blocks: captured from their TorchScript graph
    "jit_script_blocks": ("""
class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class Net(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.inp = nn.Linear(32, d)
        self.blocks = nn.Sequential(*[torch.jit.script(Block(d)) for _ in range(3)])
        self.out = nn.Linear(d, 10)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


def example_inputs():
    return (torch.randn(16, 32),)
""", ["inp", "blocks.0.fc1", "blocks.0.fc2", "blocks.1.fc1", "blocks.1.fc2", "blocks.2.fc1", "blocks.2.fc2", "out"]),
    # weight norm (old hook API and parametrizations) and spectral norm
    "reparametrized_weights": ("""
from torch.nn.utils import weight_norm, spectral_norm
from torch.nn.utils.parametrizations import weight_norm as p_weight_norm, spectral_norm as p_spectral_norm


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = weight_norm(nn.Conv1d(16, 32, 3, padding=1))
        self.b = p_weight_norm(nn.Conv1d(32, 32, 3, padding=1))
        self.c = spectral_norm(nn.Conv1d(32, 32, 3, padding=1))
        self.d = p_spectral_norm(nn.Conv1d(32, 32, 3, padding=1))
        self.out = p_weight_norm(nn.Conv1d(32, 1, 3, padding=1))

    def forward(self, x):
        for m in (self.a, self.b, self.c, self.d):
            x = torch.tanh(m(x))
        return self.out(x)


def example_inputs():
    return (torch.randn(4, 16, 64),)
""", ["a", "b", "c", "d", "out"]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_weight_layers_are_found_and_estimated(name, tmp_path):
    source, layers = MODELS[name]
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + source, encoding="utf-8")
    model, est, meas = estimate_and_measurement(path, select=["GL"])
    assert [ly.module for ly in model.weight_layers] == layers
    assert model.estimate.unhandled == [], model.estimate.unhandled
    errors = log_errors(est[:-1], meas[:-1])
    assert len(errors) == len(layers) - 1
    assert statistics.median(errors) < 0.25, list(zip(layers, est, meas))
    assert not [f for f in model.findings if f.code in ("GL001", "GL003", "GL004", "GL203")], model.findings


def test_functional_weights_are_one_layer_per_module(tmp_path):
    path = tmp_path / "f.py"
    path.write_text(HEADER + MODELS["functional_modules"][0], encoding="utf-8")
    model = analyze_path(f"{path}::Net", select=["GL2"]).models[0]
    attn = next(n for n in model.graph.weight_layers() if n.module == "attn")
    assert attn.attrs["weights"] == ["attn.wq", "attn.wk", "attn.wv", "attn.wo"]


def test_unfollowable_script_module_is_reported_by_name(tmp_path):
    path = tmp_path / "ignored.py"
    path.write_text(HEADER + """
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 32)

    @torch.jit.ignore
    def log(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x):
        return torch.tanh(self.fc(self.log(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(16, 32)
        self.block = torch.jit.script(Block())
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.block(self.inp(x)))


def example_inputs():
    return (torch.randn(8, 16),)
""", encoding="utf-8")
    report = analyze_path(str(path), select=["GL"], config=Config(verify=True))
    assert [m.target.rpartition("::")[2] for m in report.models] == ["Net"]  # the scripted block is no model
    (finding,) = [f for f in report.findings if f.code == "GL004"]
    assert "block (Block)" in finding.message and "1 weight tensor" in finding.message
    assert finding.severity == "warning" and finding.location.line == 24  # self.block = torch.jit.script(...)


FROZEN = HEADER + """
class Net(nn.Module):
    # a frozen sigmoid backbone (as if pretrained) and a trainable head
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.Sigmoid())])
        self.backbone.requires_grad_(False)
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.backbone(x))))


def example_inputs():
    return (torch.randn(16, 64),)
"""


def test_frozen_layers_are_not_weight_layers(tmp_path):
    path = tmp_path / "frozen.py"
    path.write_text(FROZEN, encoding="utf-8")
    model = analyze_path(f"{path}::Net", select=["GL2", "GL3"], config=Config(verify=True)).models[0]
    assert [ly.module for ly in model.weight_layers] == ["fc1", "fc2"]
    assert [ly.module for ly in model.layers if ly.frozen] == [f"backbone.{i}" for i in range(0, 24, 2)]
    assert model.summary.verdict == "healthy" and model.summary.measured_verdict == "healthy"
    assert not [f for f in model.findings if f.code in ("GL201", "GL301", "GL305")]
    assert any("12 frozen layers" in n for n in model.notes)
    out = subprocess.run([sys.executable, "-m", "gradlint", "--no-cache", "--format", "json", "--select", "GL2",
                          f"{path}::Net"], capture_output=True, text=True)
    layers = json.loads(out.stdout)["models"][0]["layers"]
    assert layers[0] == {**layers[0], "module": "backbone.0", "frozen": True, "estimate": None}
    assert layers[-1]["module"] == "fc2" and "frozen" not in layers[-1] and layers[-1]["estimate"]["grad_ratio"] == 1.0
