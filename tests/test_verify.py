"""--verify: one measured forward/backward pass, on models whose answer is known by construction."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
import torch.nn as nn
from helpers import analyze_path

import gradlint
from gradlint.report.text import render_json

# -- models with a known answer ------------------------------------------------------------------

class SigmoidBlock(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.fc(x))


class DeepSigmoidMLP(nn.Module):
    """20 weight layers, sigmoid, default init: every layer passes ~0.1 of the gradient RMS."""

    def __init__(self, depth=20, width=32):
        super().__init__()
        self.blocks = nn.Sequential(*[SigmoidBlock(width) for _ in range(depth - 1)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.blocks(x))


class ReLUResidualBlock(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.fc = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        return x + torch.relu(self.fc(x))


class HeResidualMLP(nn.Module):
    def __init__(self, depth=20, width=32):
        super().__init__()
        self.blocks = nn.Sequential(*[ReLUResidualBlock(width) for _ in range(depth - 1)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.blocks(x))


class ZeroMiddle(nn.Module):
    """fc2 is zero-initialized: nothing flows back to fc1."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)
        nn.init.zeros_(self.fc2.weight)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


def x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def codes(report):
    return [f.code for f in report.findings]


# -- the known answers ----------------------------------------------------------------------------

def test_deep_sigmoid_mlp_vanishes_when_measured():
    r = gradlint.analyze(DeepSigmoidMLP(), x(16, 32))
    assert r.summary.measured_verdict == "vanishing"
    assert r.summary.measured_attenuation < 1e-10
    ratios = [layer.measured["grad_ratio"] for layer in r.layers]
    assert ratios[-1] == 1.0
    # the gradient shrinks layer after layer going back from the output
    assert all(a < b for a, b in zip(ratios, ratios[1:])), ratios
    assert "GL301" in codes(r)


def test_he_relu_residual_mlp_does_not_vanish():
    r = gradlint.analyze(HeResidualMLP(), x(16, 32))
    assert r.summary.measured_verdict == "healthy"
    assert 1e-2 < r.summary.measured_attenuation < 1e2
    assert not {"GL301", "GL302", "GL305", "GL307"} & set(codes(r))


def test_zero_initialized_layer_gives_exactly_zero_gradients_upstream():
    r = gradlint.analyze(ZeroMiddle(), x(8, 16))
    v = r.measurement
    fc1, fc2, head = v.layers
    assert fc1.zero_fraction == 1.0 and fc1.grad_norm == 0.0
    assert fc1.structural_zero and fc1.zero_cause == "fc2.weight"
    assert fc2.grad_norm > 0 and not fc2.structural_zero  # its own input is not zero
    assert r.summary.measured_verdict == "structural-zero"
    assert r.summary.measured_attenuation == 0.0
    assert not {"GL301", "GL305"} & set(codes(r))  # a structural zero is not a vanishing gradient
    assert any("structural zero" in n for n in r.notes)


def test_nan_in_the_forward_is_reported_at_the_op(write):
    path = write("nanfwd.py", """
        import torch
        import torch.nn as nn


        class LogFeatures(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(16, 16)
                self.head = nn.Linear(16, 4)

            def forward(self, x):
                return self.head(torch.sqrt(self.fc(x)))


        def example_inputs():
            return (torch.randn(8, 16),)
    """)
    report = analyze_path(path, verify=True)
    m = report.models[0]
    hits = [f for f in m.findings if f.code == "GL307"]
    assert hits and hits[0].location.line == 12 and "sqrt()" in hits[0].message
    assert m.measurement.has_nonfinite
    head = m.layers[1].measured
    assert head["grad_norm"] is None and head["grad_rms"] is None  # NaN is not JSON: null
    buf = __import__("io").StringIO()
    render_json(report, buf)  # allow_nan=False must not raise
    assert json.loads(buf.getvalue())["models"][0]["layers"][1]["measured"]["grad_norm"] is None


def test_nan_only_in_the_backward_is_located_between_layers():
    class PairwiseDistances(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.head = nn.Linear(8, 4)

        def forward(self, x):
            h = self.fc(x)
            # distances by hand: the diagonal is sqrt(0), finite, but its derivative is infinite
            dist = torch.sqrt(((h[:, None, :] - h[None, :, :]) ** 2).sum(-1))
            return self.head(dist)

    r = gradlint.analyze(PairwiseDistances(), x(8, 16))
    v = r.measurement
    assert v.loss_value is not None and math.isfinite(v.loss_value)
    assert v.layers[0].nonfinite > 0 and v.layers[1].nonfinite == 0
    f = next(f for f in r.findings if f.code == "GL307")
    assert "backward" in f.message and "between fc and head" in f.message


def test_saturating_tanh_with_huge_weights():
    class LoudTanh(nn.Module):
        def __init__(self, gain):
            super().__init__()
            self.fcs = nn.ModuleList([nn.Linear(64, 64) for _ in range(4)])
            for fc in self.fcs:
                nn.init.normal_(fc.weight, std=gain / 8.0)

        def forward(self, x):
            for fc in self.fcs:
                x = torch.tanh(fc(x))
            return x

    loud = gradlint.analyze(LoudTanh(20.0), x(16, 64)).measurement
    quiet = gradlint.analyze(LoudTanh(1.0), x(16, 64)).measurement
    assert len(loud.activations) == 4  # one functional call site per preceding layer
    assert all(a.op == "tanh" and a.family == "saturating" for a in loud.activations)
    assert min(a.saturated_fraction for a in loud.activations) > 0.6
    assert max(a.saturated_fraction for a in quiet.activations) < 0.01


def test_dead_relus():
    class NegativeBias(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 64)
            nn.init.constant_(self.fc.bias, -2.0)
            self.act = nn.ReLU()
            self.head = nn.Linear(64, 4)

        def forward(self, x):
            return self.head(self.act(self.fc(x)))

    r = gradlint.analyze(NegativeBias(), x(16, 64))
    site = r.measurement.activations[0]
    assert site.module == "act" and site.layer == "fc"
    assert site.inactive_fraction > 0.95 and site.dead_fraction > 0.8
    assert "GL304" in codes(r)


# -- the contract's numbers ----------------------------------------------------------------------

def test_measured_fields_follow_the_contract_definition():
    """grad_norm / grad_rms / grad_ratio recomputed by hand with the same projection loss."""
    from gradlint.verify.measure import projection_loss

    model = DeepSigmoidMLP(depth=5)
    inputs = x(8, 32)
    r = gradlint.analyze(model, inputs, seed=3)
    torch.manual_seed(3)
    model.zero_grad()
    projection_loss([model(inputs)], 3).backward()
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    rms = [w.grad.pow(2).mean().sqrt().item() for w in weights]
    for layer, w, q in zip(r.layers, weights, rms):
        assert layer.measured["grad_norm"] == pytest.approx(w.grad.norm().item(), rel=1e-5)
        assert layer.measured["grad_rms"] == pytest.approx(q, rel=1e-5)
        assert layer.measured["grad_ratio"] == pytest.approx(q / rms[-1], rel=1e-5)
    assert set(r.layers[0].measured) == {"grad_ratio", "grad_norm", "grad_rms", "act_rms"}


def test_delta_is_the_gradient_at_the_layer_output():
    model = DeepSigmoidMLP(depth=4)
    inputs = x(8, 32)
    r = gradlint.analyze(model, inputs)
    outs = {}

    def keep(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outs[name] = output
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    from gradlint.verify.measure import projection_loss

    torch.manual_seed(0)
    projection_loss([model(inputs)], 0).backward()
    for h in hooks:
        h.remove()
    for lm in r.measurement.layers:
        assert lm.delta_norm == pytest.approx(outs[lm.module].grad.norm().item(), rel=1e-5)


def test_histogram_and_sign_counts_add_up():
    r = gradlint.analyze(HeResidualMLP(depth=4), x(8, 32))
    for lm in r.measurement.layers:
        assert lm.zeros + lm.nonfinite + sum(lm.hist) == lm.numel
        assert lm.positive + lm.negative == sum(lm.hist)
        assert sum(lm.hist_negative) == lm.negative
        assert lm.fraction_below(10.0) == 1.0 and lm.fraction_below(-40.0) == lm.zero_fraction


def test_same_seed_same_numbers_other_seed_other_numbers(write):
    path = write("seeded.py", """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 4))

            def forward(self, x):
                return self.net(x)
    """)

    def att(seed):
        return analyze_path(path, verify=True, seed=seed).models[0].summary.measured_attenuation

    assert att(1) == att(1)
    assert att(1) != att(2)


# -- the model is used in place and left as it came -----------------------------------------------

def test_model_state_is_restored():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    model.eval()
    model[0].weight.requires_grad_(False)
    marker = torch.full_like(model[3].weight, 7.0)
    model[3].weight.grad = marker
    mean_before = model[1].running_mean.clone()
    weight_ptr = model[0].weight.data_ptr()
    r = gradlint.analyze(model, x(8, 8))
    # a frozen weight is not a weight layer (schema 2): listed as frozen, not measured
    assert r.layers[0].frozen and r.layers[0].measured is None
    assert r.layers[-1].measured["grad_norm"] > 0
    assert not model.training and not model[1].training
    assert not model[0].weight.requires_grad and model[0].weight.grad is None
    assert model[3].weight.grad is marker
    assert torch.equal(model[1].running_mean, mean_before)
    assert model[0].weight.data_ptr() == weight_ptr  # not copied


# -- building for verify, and failures as GL001 at stage verify ---------------------------------

MODEL_FILE = """
    import torch
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            {body}
            return self.head(torch.tanh(self.fc(x)))
"""


def test_model_kept_on_meta_is_built_once_for_verify(write):
    path = write("big.py", MODEL_FILE.format(body="pass"))
    report = analyze_path(path, verify=True, materialize_limit=0)
    m = report.models[0]
    assert m.materialized is False
    assert m.summary.measured_verdict == "healthy"
    assert all(layer.measured["grad_norm"] > 0 for layer in m.layers)


def test_too_big_for_memory_is_refused_with_a_hint(write, monkeypatch):
    from gradlint.verify import resources

    monkeypatch.setattr(resources, "available_bytes", lambda device: 1000)
    path = write("big.py", MODEL_FILE.format(body="pass"))
    report = analyze_path(path, verify=True, materialize_limit=0, select=["GL001", "GL1"])
    m = report.models[0]
    gl001 = [f for f in m.findings if f.code == "GL001"]
    assert gl001 and gl001[0].message.startswith("verify failed: the model needs about")
    assert "smaller configuration" in gl001[0].fix
    assert m.status == "analyzed" and m.layers and m.layers[0].measured is None  # static results kept


def test_gradients_that_would_not_fit_are_refused_for_a_materialized_model(write, monkeypatch):
    from gradlint.verify import resources

    monkeypatch.setattr(resources, "available_bytes", lambda device: 1000)
    path = write("small.py", MODEL_FILE.format(body="pass"))
    f = next(f for f in analyze_path(path, verify=True).findings if f.code == "GL001")
    assert "for gradients before any activation" in f.message


def test_forward_that_fails_under_verify_is_gl001_and_keeps_static_results(write):
    body = "if torch.is_grad_enabled(): raise ValueError('this forward refuses gradients')"
    path = write("fails.py", MODEL_FILE.format(body=body))
    report = analyze_path(path, verify=True)
    m = report.models[0]
    f = next(f for f in m.findings if f.code == "GL001")
    assert f.message == "verify failed: ValueError: this forward refuses gradients"
    assert f.location.line == 12 and "--batch-size" in f.fix
    assert m.status == "analyzed" and [layer.module for layer in m.layers] == ["fc", "head"]
    assert m.summary.measured_verdict is None


def test_out_of_memory_names_the_batch_and_the_remedy(write):
    body = "if torch.is_grad_enabled(): raise MemoryError('simulated')"
    path = write("oom.py", MODEL_FILE.format(body=body))
    f = next(f for f in analyze_path(path, verify=True).findings if f.code == "GL001")
    assert f.message.startswith("verify failed: out of memory in the forward/backward pass on cpu at batch 8")
    assert "--batch-size" in f.fix and "--device cpu" in f.fix


def test_integer_output_is_gl001_at_the_model_with_a_hint(write):
    path = write("argmax.py", MODEL_FILE.format(body="pass").replace(
        "return self.head(torch.tanh(self.fc(x)))", "return self.head(torch.tanh(self.fc(x))).argmax(-1)"))
    f = next(f for f in analyze_path(path, verify=True).findings if f.code == "GL001")
    assert f.message == ("verify failed: the model's output (an int64 tensor of shape (8,)) holds no floating-point "
                         "tensor to take a gradient of")
    assert f.location.line == 5 and "gradlint_loss" in f.fix  # the class definition


def test_user_loss_from_the_file_and_from_the_config(write):
    path = write("lossy.py", MODEL_FILE.format(body="pass") + """

    def gradlint_loss(output):
        return output.pow(2).mean()


    def other_loss(output, x):
        return (output.sum(dim=1) - x.sum(dim=1)).abs().mean()


    def vector_loss(output):
        return output.sum(dim=1)
    """)
    v = analyze_path(path, verify=True).models[0].measurement
    assert v.loss == "gradlint_loss()" and v.loss_value > 0  # a mean of squares; a projection can be < 0
    v2 = analyze_path(path, verify=True, loss="other_loss").models[0].measurement
    assert v2.loss == "other_loss()" and v2.loss_value != v.loss_value
    missing = analyze_path(path, verify=True, loss="nope").findings
    assert any(f.code == "GL001" and "'nope'" in f.message for f in missing)
    vector = analyze_path(path, verify=True, loss="vector_loss").findings
    assert any(f.code == "GL001" and f.message == "verify failed: the loss function returned a float32 tensor of "
               "shape (8,), not a scalar" for f in vector)


def test_device_resolution():
    from gradlint.verify.resources import DeviceError, resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")


def test_peak_memory_and_time_are_reported():
    v = gradlint.analyze(HeResidualMLP(depth=4), x(8, 32)).measurement
    assert v.forward_backward_s > 0 and v.statistics_s > 0
    assert v.peak_memory_bytes is not None and v.peak_memory_bytes >= 0
    if sys.platform.startswith("linux"):
        assert v.memory_method in ("peak resident memory (VmHWM)", "resident memory, sampled every 1 ms")


def test_peak_memory_sees_a_short_lived_allocation():
    from gradlint.verify.resources import PeakMemory

    # 96 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so it is always fresh pages
    # (a 32 MiB block could be served from heap memory an earlier test left resident).
    with PeakMemory("cpu") as pm:
        big = torch.ones(96 * 2**20 // 4)  # touched, then freed
        del big
    if pm.method.startswith(("peak resident", "resident memory")):
        assert 88 * 2**20 <= pm.peak <= 192 * 2**20


def test_verify_off_measures_nothing(write):
    path = write("plain.py", MODEL_FILE.format(body="pass"))
    m = analyze_path(path).models[0]
    assert m.layers and all(layer.measured is None for layer in m.layers)
    assert m.measurement is None and m.summary.measured_verdict is None


def test_gradient_statistics_exact_on_small_tensors_and_sampled_on_large_ones():
    from gradlint.verify.gradstats import SAMPLE, grad_stats
    from gradlint.verify.measurement import HIST_LOW, HIST_WIDTH

    g = torch.tensor([0.0, 0.0, 3e-8, -3e-8, 3.0, -2.0, float("nan"), float("inf")])
    s = grad_stats([g], [g.numel()])
    assert (s.zeros, s.nonfinite, s.positive, s.negative) == (2, 2, 2, 2)
    bin_of = lambda v: int((math.log10(v) - HIST_LOW) / HIST_WIDTH)  # noqa: E731
    assert s.hist[bin_of(3e-8)] == 2 and s.hist_negative[bin_of(3e-8)] == 1
    assert s.hist[bin_of(3.0)] == 2 and s.hist_negative[bin_of(2.0)] == 1 and sum(s.hist) == 4

    big = torch.randn(3 * SAMPLE, generator=torch.Generator().manual_seed(0)).abs()  # one-signed
    big[: SAMPLE // 2] = 0.0
    big[-7:] = -1.0
    s = grad_stats([big], [big.numel()])
    assert s.sampled and s.zeros == SAMPLE // 2 and s.nonfinite == 0
    assert s.positive + s.negative == big.numel() - SAMPLE // 2
    assert s.positive / (s.positive + s.negative) > 0.999
    assert SAMPLE // 2 <= sum(s.hist) <= SAMPLE + 1


def test_square_sum_is_exact_for_tiny_and_huge_gradients():
    from gradlint.verify.measure import square_sum

    for scale in (1e-30, 1.0, 1e30):
        t = torch.full((1000,), 3.0) * scale
        assert square_sum(t) == pytest.approx(9000.0 * scale * scale, rel=1e-5)
    assert math.isnan(square_sum(torch.tensor([1.0, float("nan")])))
    assert square_sum(torch.tensor([1.0, float("-inf")])) == float("inf")


# -- stochastic depth ----------------------------------------------------------------------------

class DropPath(nn.Module):
    """timm's DropPath, in miniature: drop the whole branch for a sample with probability p."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class DropPathResidualMLP(nn.Module):
    """Residual branches behind DropPath(0.9): with a batch of 2, most branches are dropped for the
    whole batch in a train-mode pass, and their layers get exactly zero gradient."""

    def __init__(self, depth=4, width=32, p=0.9):
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.drops = nn.ModuleList([DropPath(p) for _ in range(depth)])
        self.norm = nn.BatchNorm1d(width)  # stays in train mode: batch statistics
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        x = self.stem(x)
        for fc, drop in zip(self.fcs, self.drops):
            x = x + drop(torch.relu(fc(x)))
        return self.head(self.norm(x))


def test_stochastic_depth_is_off_for_the_measured_pass(monkeypatch):
    import contextlib

    import gradlint.verify.passes as passes

    model = DropPathResidualMLP()
    # the pass with stochastic depth on (the behaviour before): branches dropped for the whole batch
    with monkeypatch.context() as mp:
        mp.setattr(passes, "stochastic_depth_off", lambda model: contextlib.nullcontext(0))
        before = gradlint.analyze(model, x(2, 32))
    assert any(lm.zero_fraction == 1.0 for lm in before.measurement.layers)
    assert "GL305" in codes(before)

    r = gradlint.analyze(model, x(2, 32))
    v = r.measurement
    assert not any(lm.zeros == lm.numel for lm in v.layers), [lm.module for lm in v.layers if lm.zeros == lm.numel]
    assert "GL305" not in codes(r)
    assert "stochastic depth off for the measured pass: 4 modules (identity, as at inference)" in v.notes
    assert any("stochastic depth off" in n for n in r.notes)
    # only the drop-path modules changed mode, and only for the pass
    assert model.training and all(d.training for d in model.drops) and model.norm.training
    # the estimate models them as the identity too (no "no model for" note)
    assert not any("no model for" in n for n in r.notes), r.notes


def test_stochastic_depth_modules_are_recognised():
    from gradlint.verify.stochastic_depth import (
        is_stochastic_depth,
        stochastic_depth_off,
    )

    class ConvNextDropPath(nn.Module):  # Hugging Face's name
        def forward(self, x):
            return x

    class StochasticDepth(nn.Module):  # torchvision's name, user-written
        def forward(self, x):
            return x

    class DropPathBlock(nn.Module):  # a block with weights is not a drop-path module
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

    assert is_stochastic_depth(DropPath(0.1)) and is_stochastic_depth(ConvNextDropPath())
    assert is_stochastic_depth(StochasticDepth())
    assert not is_stochastic_depth(DropPathBlock()) and not is_stochastic_depth(nn.Dropout(0.5))
    model = nn.Sequential(nn.Linear(4, 4), DropPath(0.5), nn.Dropout(0.5))
    with stochastic_depth_off(model) as n:
        assert n == 1 and not model[1].training and model[2].training
    assert model[1].training
    tv_ops = pytest.importorskip("torchvision.ops")
    assert is_stochastic_depth(tv_ops.StochasticDepth(0.5, "row"))


# -- structural zeros the estimate explains are GL203's, not GL305's -------------------------------

class SEGate(nn.Module):
    """Squeeze-and-excitation on features: x * sigmoid(fc2(relu(fc1(x))))."""

    def __init__(self, width, reduced):
        super().__init__()
        self.fc1 = nn.Linear(width, reduced)
        self.fc2 = nn.Linear(reduced, width)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))


class ZeroInitLastSEBlock(nn.Module):
    """timm's SE-ResNet block in miniature: a zero-initialized last BatchNorm scale (zero_init_last),
    then the SE gate. The BatchNorm's output is exactly 0, so the gate gets a zero input and, as it
    multiplies that zero, a zero error signal."""

    def __init__(self, width=32):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.bn = nn.BatchNorm1d(width)
        nn.init.zeros_(self.bn.weight)
        self.se = SEGate(width, 8)

    def forward(self, x):
        return x + self.se(self.bn(self.fc(x)))


class SENet(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.block = ZeroInitLastSEBlock(width)  # the last block: no zero weight finishes after it
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


class ScaledStdConv2d(nn.Conv2d):
    """NFNets' weight-standardized conv with a learned gain (timm's ScaledStdConv2d)."""

    def __init__(self, cin, cout, k, gain_init=1.0):
        super().__init__(cin, cout, k, padding=k // 2)
        self.gain = nn.Parameter(torch.full((cout, 1, 1, 1), gain_init))

    def forward(self, x):
        w = nn.functional.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
                                     momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return nn.functional.conv2d(x, self.gain * w * self.weight[0].numel() ** -0.5, self.bias, self.stride,
                                    self.padding)


class ZeroGainNF(nn.Module):
    """An NF-ResNet block in miniature whose last conv's gain starts at zero (zero_init_last)."""

    def __init__(self, c=8):
        super().__init__()
        self.stem = ScaledStdConv2d(3, c, 3)
        self.conv1 = ScaledStdConv2d(c, c, 3)
        self.conv2 = ScaledStdConv2d(c, c, 3, gain_init=0.0)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.conv2(torch.relu(self.conv1(x)))
        return self.head(x.mean((2, 3)))


def test_zero_init_bn_before_an_se_gate_is_a_structural_zero_not_a_collapse():
    r = gradlint.analyze(SENet(), x(4, 32))
    v = r.measurement
    fc1, fc2 = v.layer("block.se.fc1"), v.layer("block.se.fc2")
    assert fc1.zeros == fc1.numel and fc2.zeros == fc2.numel  # measured: exactly zero
    assert not fc1.structural_zero  # no zero weight finishes after it: the pass alone cannot tell
    est = {ly.module: ly for ly in r.estimate.layers}
    reason = "block.bn's scale (weight) is all zeros (zero-initialized)"
    assert est["block.se.fc1"].zero == est["block.se.fc2"].zero == est["block.fc"].zero == reason
    assert "GL305" not in codes(r)
    gl203 = [f.message for f in r.findings if f.code == "GL203"]
    assert len(gl203) == 1 and "3 weight layers (block.fc, block.se.fc1, block.se.fc2)" in gl203[0], gl203


def test_zero_gain_of_a_weight_standardized_conv_is_a_structural_zero_not_a_collapse():
    r = gradlint.analyze(ZeroGainNF(), x(2, 3, 8, 8))
    v = r.measurement
    conv2 = v.layer("conv2")
    assert conv2.zeros == conv2.numel and not conv2.structural_zero
    est = {ly.module: ly for ly in r.estimate.layers}
    assert est["conv2"].zero == est["conv1"].zero == "conv2's gain is all zeros (zero-initialized)"
    assert "GL305" not in codes(r)
    assert any(f.code == "GL203" and "conv2's gain" in f.message for f in r.findings)


class ZeroedBranch(nn.Module):
    """A branch multiplied by a constant 0: exactly zero gradient that no zero-initialized weight
    explains. GL305 still reports it."""

    def __init__(self, width=32):
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.branch = nn.Linear(width, width)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        x = self.stem(x)
        return self.head(x + 0.0 * torch.relu(self.branch(x)))


def test_an_exactly_zero_gradient_the_estimate_does_not_explain_is_still_gl305():
    r = gradlint.analyze(ZeroedBranch(), x(4, 32))
    branch = r.measurement.layer("branch")
    assert branch.zeros == branch.numel
    est = {ly.module: ly for ly in r.estimate.layers}
    assert not est["branch"].zero
    assert "GL305" in codes(r)
