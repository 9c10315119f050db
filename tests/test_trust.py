"""Findings users can trust: notes never fail a run, architecture warnings need the numbers to
agree, the structural rules read what the estimator knows, and nothing passes unchecked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import analyze_path

from gradlint.cli import main
from gradlint.config import Config

HE_MLP = """
import torch
import torch.nn as nn


class HeMLP(nn.Module):
    def __init__(self, depth=30, width=64):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def example_inputs():
    return (torch.randn(16, 64),)
"""

SIGMOID_MLP = """
import torch
import torch.nn as nn


class SigmoidMLP(nn.Module):
    def __init__(self, depth=12, width=32):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        for layer in self.layers:
            x = torch.sigmoid(layer(x))
        return x


def example_inputs():
    return (torch.randn(16, 32),)
"""


def cli(*args, cwd=None):
    result = CliRunner().invoke(main, [*args, "--no-cache"])
    return result.exit_code, result.stdout, result.stderr


# -- evidence gating -----------------------------------------------------------------------------

def test_a_healthy_deep_relu_mlp_gets_notes_and_exit_0(write):
    path = write("he_mlp.py", HE_MLP)
    m = analyze_path(path).models[0]
    assert m.summary.verdict == "healthy"
    structural = [f for f in m.findings if f.code.startswith("GL1")]
    assert {f.code for f in structural} >= {"GL102", "GL103"}
    assert all(f.severity == "info" for f in structural)
    assert all("not raised: the estimate keeps the first layer's gradient at" in f.message for f in structural)
    code, out, _ = cli(str(path))
    assert code == 0
    assert "GL102" not in out and out.strip().endswith("(--show-notes to list).")
    code, out, _ = cli(str(path), "--show-notes")
    assert code == 0 and "GL102 note: 30 weight layers in a row" in out


def test_structural_always_brings_the_warnings_back(write):
    path = write("he_mlp.py", HE_MLP)
    m = analyze_path(path, config=Config(structural="always")).models[0]
    assert {f.code: f.severity for f in m.findings if f.code.startswith("GL1")}["GL102"] == "warning"
    (path.parent / "pyproject.toml").write_text('[tool.gradlint]\nstructural = "always"\n')
    code, out, _ = cli(str(path), "--config", str(path.parent / "pyproject.toml"))
    assert code == 1 and "GL102 30 weight layers in a row" in out


def test_a_vanishing_model_keeps_its_warnings(write):
    path = write("sigmoid.py", SIGMOID_MLP)
    m = analyze_path(path).models[0]
    assert m.summary.verdict == "vanishing"
    severities = {f.code: f.severity for f in m.findings}
    assert severities["GL101"] == "error" and severities["GL102"] == "warning" and severities["GL201"] == "error"


def test_the_measured_batch_is_the_evidence_with_verify(write):
    path = write("he_mlp.py", HE_MLP)
    m = analyze_path(path, verify=True).models[0]
    assert m.summary.measured_verdict == "healthy"
    notes = [f for f in m.findings if f.code == "GL102"]
    assert notes and notes[0].severity == "info" and "the measured batch keeps the first layer's gradient" in notes[0].message


def test_a_bad_structural_value_is_a_configuration_error(write, tmp_path):
    path = write("he_mlp.py", HE_MLP)
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nstructural = "sometimes"\n')
    code, _, err = cli(str(path), "--config", str(tmp_path / "pyproject.toml"))
    assert code == 2 and "structural: expected 'evidence' or 'always'" in err


# -- notes in every output format -----------------------------------------------------------------

def test_notes_in_json_sarif_github_and_statistics(write):
    path = write("he_mlp.py", HE_MLP)
    _, out, _ = cli(str(path), "--format", "json")
    data = json.loads(out)
    assert data["schema"] == 2
    assert {f["severity"] for f in data["models"][0]["findings"]} == {"info"}
    _, out, _ = cli(str(path), "--format", "sarif")
    assert {r["level"] for r in json.loads(out)["runs"][0]["results"]} == {"note"}
    code, out, _ = cli(str(path), "--format", "github")
    assert code == 0 and "::" not in out
    _, out, _ = cli(str(path), "--format", "github", "--show-notes")
    assert "::notice " in out and "::warning" not in out
    _, out, _ = cli(str(path), "--statistics")
    assert "GL102" not in out
    _, out, _ = cli(str(path), "--statistics", "--show-notes")
    assert "GL102" in out


# -- what the structural rules read ----------------------------------------------------------------

EDSR = """
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c=32):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + 0.1 * self.c2(torch.relu(self.c1(x)))


class EDSR(nn.Module):
    def __init__(self, n=16, c=32):
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*[Block(c) for _ in range(n)])
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        h = self.head(x)
        return self.tail(h + self.body(h))


def example_inputs():
    return (torch.randn(2, 3, 24, 24),)
"""


def test_scaled_residual_branches_are_not_missing_normalization(write):
    path = write("edsr.py", EDSR)
    m = analyze_path(path, config=Config(structural="always")).models[0]
    assert "GL102" not in {f.code for f in m.findings}
    unscaled = write("edsr_unscaled.py", EDSR.replace("x + 0.1 * self.c2", "x + self.c2"))
    m = analyze_path(unscaled, config=Config(structural="always")).models[0]
    assert "GL102" in {f.code for f in m.findings}  # the same stack without the scaling still is one


LSTM_LOOP = """
import torch
import torch.nn as nn


class Loop(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(16, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 32)
        c = torch.zeros(x.shape[0], 32)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.out(h)


def example_inputs():
    return (torch.randn(4, 200, 16),)
"""


def test_a_cell_looped_over_time_is_one_layer(write):
    path = write("loop.py", LSTM_LOOP)
    m = analyze_path(path, config=Config(structural="always")).models[0]
    assert m.depth == 2 and m.shortest_depth == 2
    assert not [f for f in m.findings if f.code in ("GL102", "GL103")]


# -- structural zeros ---------------------------------------------------------------------------------

ZERO_GAMMA = """
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


class ZeroGammaNet(nn.Module):
    def __init__(self, n=8):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.blocks = nn.Sequential(*[Block() for _ in range(n)])
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


def example_inputs():
    return (torch.randn(4, 3, 16, 16),)
"""


def test_zero_gamma_blocks_are_one_note_and_exit_0(write):
    path = write("zg.py", ZERO_GAMMA)
    m = analyze_path(path).models[0]
    notes = [f for f in m.findings if f.code == "GL203"]
    assert len(notes) == 1 and notes[0].severity == "info"
    assert "8 zero-initialized weights or scales" in notes[0].message
    code, out, _ = cli(str(path))
    assert code == 0 and "GL203" not in out


TWO_ZERO = """
import torch
import torch.nn as nn


class TwoZero(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Linear(32, 32)
        self.c = nn.Linear(32, 4)
        nn.init.zeros_(self.b.weight)
        nn.init.zeros_(self.b.bias)
        nn.init.zeros_(self.c.weight)

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def example_inputs():
    return (torch.randn(8, 16),)
"""


@pytest.mark.parametrize("materialize_limit", [50_000_000, 0])
def test_zero_weights_that_never_move_are_an_error(write, materialize_limit):
    path = write("two_zero.py", TWO_ZERO)
    m = analyze_path(path, materialize_limit=materialize_limit).models[0]
    errors = [f for f in m.findings if f.code == "GL203" and f.severity == "error"]
    assert len(errors) == 1 and "b.weight, c.weight" in errors[0].message
    # one zero layer alone resolves after the first step: a note
    one = write("one_zero.py", TWO_ZERO.replace("        nn.init.zeros_(self.b.weight)\n        nn.init.zeros_(self.b.bias)\n", ""))
    m = analyze_path(one, materialize_limit=materialize_limit).models[0]
    assert [f.severity for f in m.findings if f.code == "GL203"] == ["info"]


def test_the_never_resolving_pair_is_confirmed_by_two_sgd_steps(write):
    """The claim behind the error: after real optimizer steps the two zero weights are still zero,
    and with only the head zero-initialized it has moved."""
    import importlib.util

    import torch

    path = write("two_zero.py", TWO_ZERO)
    spec = importlib.util.spec_from_file_location("two_zero_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for zero_b, expect_stuck in ((True, True), (False, False)):
        torch.manual_seed(0)
        net = module.TwoZero()
        if not zero_b:
            net.b.reset_parameters()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            net(torch.randn(8, 16)).pow(2).sum().backward()
            opt.step()
        assert (float(net.c.weight.detach().abs().max()) == 0.0) == expect_stuck


# -- nothing passes unchecked -------------------------------------------------------------------------

def test_a_model_without_weight_layers_is_a_warning(write):
    path = write("scaler.py", """
import torch
import torch.nn as nn


class Scaler(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8))

    def forward(self, x):
        return torch.tanh(x) * self.scale


def example_inputs():
    return (torch.randn(4, 8),)
""")
    code, out, _ = cli(str(path))
    assert code == 1 and "GL003 no weight layer found: it has 8 parameters" in out
    assert "All checks passed" not in out
