"""Absolute scale (act_rms, grad_rms, the dtype's range, GL204) and information flow (the c-map,
GL205), each against a measurement.

The estimate's absolute numbers are compared with the contract's measurement (the random
projection loss, double precision, median of 3 seeds, ``helpers.estimate_and_measurement``);
the collapse and the ordered phase with ``--verify`` (the pass the CLI runs).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import pytest
from helpers import analyze_path, estimate_and_measurement, log_errors

from gradlint.config import Config

HEADER = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

TINY_INIT = HEADER + """
class Net(nn.Module):
    # std 0.01 in a plain ReLU net: every layer multiplies the signal by ~0.057
    def __init__(self, depth=50, width=64):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def example_inputs():
    return (torch.randn(8, 64),)
"""

HE_MLP = HEADER + """
class Net(nn.Module):
    def __init__(self, depth=30, width=256):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(64 if i == 0 else width, width) for i in range(depth)])
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


def example_inputs():
    return (torch.randn(16, 64),)
"""

BIAS_DOMINATED = HEADER + """
class Net(nn.Module):
    # tanh layers whose biases (std 2) outweigh the weights' contribution (sigma_w^2 = 1)
    def __init__(self, depth=6, width=256):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(64 if i == 0 else width, width) for i in range(depth)])
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
            nn.init.normal_(layer.bias, std=2.0)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return self.head(x)


def example_inputs():
    return (torch.randn(16, 64),)
"""

LARGE_INIT = HEADER + """
class Net(nn.Module):
    # sigma_w^2 = 8 with ReLU: the activations grow 2x per layer, past float16's 65504 by layer 20
    def __init__(self, depth=24, width=128):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=(8.0 / width) ** 0.5)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def example_inputs():
    return (torch.randn(8, 128),)
"""


def _write(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    return path


def test_absolute_scale_matches_measurement(tmp_path):
    """grad_rms is absolute under the contract's loss, and act_rms is the RMS of each layer's input.
    Depth 10: at width 256 a deeper ReLU stack's typical (median) norms drift below their mean by
    ~0.007 decades per layer (finite width, Hanin 2018), which is not what this test is about."""
    path = _write(tmp_path, "he_mlp", HE_MLP.replace("depth=30", "depth=10"))
    model, est, meas = estimate_and_measurement(path, absolute=True)
    errors = log_errors(est, meas)
    assert len(errors) == len(est)
    assert statistics.median(errors) < 0.1, errors
    assert max(errors) < 0.2, errors
    verified = analyze_path(f"{path}::Net", select=["GL2"], config=Config(verify=True)).models[0]
    for layer in verified.weight_layers:
        e, m = layer.estimate["act_rms"], layer.measured["act_rms"]
        assert e > 0 and m > 0 and abs(math.log10(e / m)) < 0.1, (layer.module, e, m)


def test_underflow_is_a_collapse_and_the_verdict_is_vanishing(tmp_path):
    """Tiny init, depth 50: every ratio looks healthy (~1.4) but float32 holds only zeros from about
    layer 30; GL204 names where the activations die, the verdict is vanishing, and the measured
    pass agrees (activations exactly 0 there, every gradient exactly 0)."""
    path = _write(tmp_path, "tiny", TINY_INIT)
    model = analyze_path(f"{path}::Net", select=["GL2"], config=Config(verify=True)).models[0]
    assert 0.1 < model.summary.estimated_attenuation < 10  # the ratio says nothing
    assert model.summary.verdict == "vanishing"
    assert model.summary.measured_verdict == "vanishing"
    (finding,) = [f for f in model.findings if f.code == "GL204"]
    est_layer = next(c for c in model.estimate.collapse if c.signal == "activations").where
    measured = next(c for c in model.measurement.collapse if c["signal"] == "activations")["layer"]
    index = [ly.module for ly in model.weight_layers]
    assert abs(index.index(est_layer) - index.index(measured)) <= 2, (est_layer, measured)
    assert "float32" in finding.message and est_layer in finding.message and "measured" in finding.message
    assert all(ly.measured["grad_rms"] == 0.0 for ly in model.weight_layers)
    # the ratio rules stay silent: the ratio of two zeros is not a measured vanishing gradient
    assert not [f for f in model.findings if f.code in ("GL201", "GL301")]


def test_he_init_stays_in_range_and_is_not_indistinguishable(tmp_path):
    path = _write(tmp_path, "he", HE_MLP)
    model = analyze_path(f"{path}::Net", select=["GL2"]).models[0]
    assert model.estimate.collapse == []
    assert model.estimate.indistinct is None
    assert not [f for f in model.findings if f.code in ("GL204", "GL205")]
    # edge of chaos: the correlation creeps towards 1 polynomially (0.985 after 30 layers)
    assert 0.95 < model.estimate.layers[-1].cosine < 0.995


def test_float16_overflow_with_dtype_and_autocast(tmp_path):
    """The same model is fine in float32 and overflows float16: --dtype float16 says so, and
    --verify --dtype float16 measures under autocast, where the forward turns non-finite."""
    path = _write(tmp_path, "large", LARGE_INIT)
    plain = analyze_path(f"{path}::Net", select=["GL2"]).models[0]
    assert plain.estimate.dtype == "float32" and plain.estimate.collapse == []
    half = analyze_path(f"{path}::Net", select=["GL2", "GL307"], config=Config(dtype="float16", verify=True)).models[0]
    kinds = {(c.kind, c.signal) for c in half.estimate.collapse}
    assert ("overflow", "activations") in kinds, kinds
    assert half.summary.verdict == "exploding"
    (finding,) = [f for f in half.findings if f.code == "GL204"]
    assert "float16" in finding.message and "overflow" in finding.message
    assert half.measurement.dtype == "float16"
    assert half.measurement.has_nonfinite  # the measured pass under autocast confirms it
    assert any("autocast" in n for n in half.notes)


def test_bfloat16_keeps_float32_range(tmp_path):
    path = _write(tmp_path, "large", LARGE_INIT)
    model = analyze_path(f"{path}::Net", select=["GL2"], config=Config(dtype="bfloat16")).models[0]
    assert model.estimate.dtype == "bfloat16" and model.estimate.collapse == []


def test_dtype_option_is_checked(tmp_path):
    path = _write(tmp_path, "he", HE_MLP)
    bad = subprocess.run([sys.executable, "-m", "gradlint", "--dtype", "float8", str(path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--dtype float8" in bad.stderr and "bfloat16" in bad.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\ndtype = "int8"\n', encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "gradlint", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "dtype" in bad.stderr


def test_json_reports_absolute_scale(tmp_path):
    path = _write(tmp_path, "he", HE_MLP)
    out = subprocess.run([sys.executable, "-m", "gradlint", "--no-cache", "--format", "json", "--verify",
                          "--select", "GL2", f"{path}::Net"], capture_output=True, text=True)
    layer = json.loads(out.stdout)["models"][0]["layers"][0]
    assert set(layer["estimate"]) >= {"grad_ratio", "bound", "act_rms", "grad_rms"}
    assert set(layer["measured"]) >= {"grad_ratio", "grad_norm", "grad_rms", "act_rms"}
    assert layer["estimate"]["act_rms"] > 0 and layer["measured"]["act_rms"] > 0


def test_ordered_phase_is_flagged_and_confirmed(tmp_path):
    """Biases outweigh the weights: the predicted cosine similarity of two inputs' activations
    approaches 1 (GL205) while GL201's ratio stays above its threshold; the measured cosine
    between the batch's samples agrees, layer by layer."""
    path = _write(tmp_path, "ordered", BIAS_DOMINATED)
    model = analyze_path(f"{path}::Net", select=["GL2"], config=Config(verify=True)).models[0]
    assert model.summary.estimated_attenuation > 1e-3 and not [f for f in model.findings if f.code == "GL201"]
    (finding,) = [f for f in model.findings if f.code == "GL205"]
    assert "biases" in finding.message and "measured cosine" in finding.message
    info = model.estimate.indistinct
    assert info.forgetting < math.exp(-6) and info.cosine > 0.998
    # 1 - cosine, estimated against measured, on every hidden layer (in decades)
    for e, m in zip(model.estimate.layers[1:], model.measurement.layers[1:]):
        assert abs(math.log10((1 - e.cosine) / (1 - m.cosine))) < 0.2, (e.module, e.cosine, m.cosine)


@pytest.mark.parametrize("example", ["transformer_encoder.py", "resnet_small.py"])
def test_healthy_examples_are_not_indistinguishable(example):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / example
    model = analyze_path(str(path), select=["GL2"]).models[0]
    assert model.estimate.indistinct is None
    assert not [f for f in model.findings if f.code in ("GL204", "GL205")]


def test_assert_gradients_flow_fails_on_a_collapsed_signal():
    """The pytest helper must not pass a model whose gradients are all exactly 0 in float32 just
    because no ratio can be formed."""
    import torch
    import torch.nn as nn

    from gradlint.testing import GradientFlowError, assert_gradients_flow

    torch.manual_seed(0)
    layers = []
    for _ in range(50):
        lin = nn.Linear(64, 64)
        nn.init.normal_(lin.weight, std=0.01)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
    with pytest.raises(GradientFlowError, match="underflow float32"):
        assert_gradients_flow(nn.Sequential(*layers), torch.randn(8, 64))


def test_integer_timesteps_promoted_by_a_float_op_keep_their_statistics(tmp_path):
    """``t[:, None] * freqs[None, :]`` with integer timesteps (denoising-diffusion-pytorch's
    sinusoidal embedding, no explicit ``.float()``): the product carries the timesteps' measured
    statistics, not an exact zero reported as a float32 underflow (GL204)."""
    path = tmp_path / "temb.py"
    path.write_text('''
import math
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.dim = dim
        self.inp = nn.Linear(16, dim)
        self.t1 = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 16)

    def forward(self, x, t):
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=x.device) * -(math.log(10000) / (half - 1)))
        emb = t[:, None] * freqs[None, :]
        emb = torch.cat((emb.sin(), emb.cos()), dim=-1)
        return self.out(torch.relu(self.inp(x) + self.t1(emb)))


def example_inputs():
    return (torch.randn(16, 16), torch.randint(0, 1000, (16,)))
''', encoding="utf-8")
    model = analyze_path(f"{path}::Net", select=["GL2"]).models[0]
    assert model.estimate.collapse == [], model.estimate.collapse
    assert model.summary.verdict == "healthy", model.summary


def test_a_log_softmax_after_the_last_layer_is_not_forgetting(tmp_path):
    """Subtracting a per-sample statistic after the last weight layer (a hand-written log-softmax)
    makes the raw outputs alike in cosine, but it is the loss's business: no GL205."""
    path = tmp_path / "lsm.py"
    path.write_text('''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(4)])
        self.out = nn.Linear(64, 32)

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x))
        y = self.out(x)
        return y - y.exp().sum(-1, keepdim=True).log()


def example_inputs():
    return (torch.randn(16, 64),)
''', encoding="utf-8")
    model = analyze_path(f"{path}::Net", select=["GL2"]).models[0]
    assert model.estimate.indistinct is None, model.estimate.indistinct
