"""The estimate in the report: the JSON contract's fields, verdicts, structural zeros, the chart,
Mermaid, the meta device, and a failing estimator turning into GL001."""

from __future__ import annotations

import io
import json
import math

import pytest
from helpers import analyze_path

from gradlint.config import Config

SIGMOID = """
import torch
import torch.nn as nn


class Deep(nn.Module):
    def __init__(self, depth=12):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(32, 32) for _ in range(depth)])
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        for fc in self.fcs:
            x = torch.sigmoid(fc(x))
        return self.head(x)
"""


def test_json_has_the_contract_fields(write):
    from gradlint.report import formats

    report = analyze_path(write("deep.py", SIGMOID))
    out = io.StringIO()
    formats.render("json", report, out)
    data = json.loads(out.getvalue())
    model = data["models"][0]
    assert [set(layer["estimate"]) for layer in model["layers"]] == [{"grad_ratio", "bound", "act_rms", "grad_rms"}] * 13
    assert model["layers"][-1]["estimate"]["grad_ratio"] == 1.0
    assert model["summary"]["estimated_attenuation"] == model["layers"][0]["estimate"]["grad_ratio"]
    assert model["summary"]["verdict"] == "vanishing"
    assert {f["code"] for f in model["findings"]} >= {"GL201"}
    assert set(model["summary"]) == {"estimated_attenuation", "verdict", "measured_attenuation", "measured_verdict"}


def test_the_finding_says_why(write):
    report = analyze_path(write("deep.py", SIGMOID), select=["GL201"])
    (finding,) = report.findings
    assert "sigmoid derivatives" in finding.message and "% of the decay" in finding.message
    assert finding.location.line == 8  # the nn.Linear of the repeated layer
    assert "ReLU" in finding.fix


def test_thresholds_come_from_the_configuration(write):
    path = write("deep.py", SIGMOID)
    att = analyze_path(path).models[0].summary.estimated_attenuation
    config = Config(vanishing_threshold=att / 10)
    report = analyze_path(path, config=config, select=["GL201"])
    assert report.models[0].summary.verdict == "healthy" and not report.findings


def test_bound_is_above_the_expected_error_signal_chain(write):
    report = analyze_path(write("deep.py", SIGMOID))
    bounds = [ly.estimate["bound"] for ly in report.models[0].layers]
    assert bounds[-1] == 1.0 and all(0 < b <= 1.0 for b in bounds[:-1])
    assert bounds == sorted(bounds)  # one more sigmoid (0.25) and weight norm per layer


@pytest.mark.parametrize("gate", ["alpha = nn.Parameter(torch.zeros(1))", "alpha = nn.Parameter(torch.zeros(32))"])
def test_rezero_and_layerscale_are_structural_zeros(write, gate):
    report = analyze_path(write("rz.py", f"""
        import torch
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(32, 32)
                self.{gate}

            def forward(self, x):
                return x + self.alpha * torch.relu(self.fc(x))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.Sequential(*[Block() for _ in range(4)])
                self.head = nn.Linear(32, 4)

            def forward(self, x):
                return self.head(self.blocks(x))
    """), select=["GL2"])
    model = report.models[0]
    assert model.summary.verdict == "structural-zero"
    assert {f.code for f in report.findings} == {"GL203"}  # not GL201: zero by design, not vanishing
    assert all(f.severity == "info" for f in report.findings)
    assert [ly.estimate["grad_ratio"] for ly in model.layers] == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_a_zero_gate_on_one_branch_is_not_the_verdict(write):
    report = analyze_path(write("half.py", """
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Linear(16, 16)
                self.branch = nn.Linear(16, 16)
                self.gate = nn.Parameter(torch.zeros(1))
                self.head = nn.Linear(16, 2)

            def forward(self, x):
                x = self.stem(x)
                return self.head(x + self.gate * self.branch(x))
    """), select=["GL2"])
    model = report.models[0]
    assert model.summary.verdict == "healthy"
    assert [f.code for f in report.findings] == ["GL203"]
    assert model.layers[1].estimate["grad_ratio"] == 0.0 and model.layers[0].estimate["grad_ratio"] > 0


def test_full_format_draws_the_chart(write, gradlint_cli):
    path = write("deep.py", SIGMOID)
    code, out, err = gradlint_cli("--format", "full", str(path))
    assert code == 1, err
    assert "gradient RMS per weight layer" in out and "#" in out and ":" in out
    assert "why fcs.0 gets" in out


def test_chart_flag_keeps_concise_lines(write, gradlint_cli):
    # seeded, so that both runs see the same weights and print the same numbers
    path = write("deep.py", SIGMOID.replace("super().__init__()", "super().__init__()\n        torch.manual_seed(0)"))
    _, plain, _ = gradlint_cli(str(path))
    _, charted, _ = gradlint_cli("--chart", str(path))
    finding_lines = [ln for ln in plain.splitlines() if ": GL" in ln]
    assert finding_lines and all(ln in charted.splitlines() for ln in finding_lines)
    assert "gradient RMS per weight layer" in charted and "gradient RMS per weight layer" not in plain


def test_mermaid_draws_the_error_signal(write, gradlint_cli):
    path = write("deep.py", SIGMOID)
    code, out, err = gradlint_cli("--format", "mermaid", str(path))
    assert out.startswith("%% gradlint") and "graph TD" in out, err
    assert "fcs.0" in out and "&delta;" in out and "-->|x" in out
    assert "class " in out and "vanishing" in out  # the early layers are coloured


def test_mermaid_with_several_models_is_markdown(write):
    from gradlint.report.mermaid import render_mermaid

    path = write("two.py", SIGMOID + """

class Shallow(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x):
        return self.a(x)
""")
    out = io.StringIO()
    render_mermaid(analyze_path(path), out)
    assert out.getvalue().count("```mermaid") == 2


def test_meta_device_uses_init_formulas(write):
    path = write("deep.py", SIGMOID)
    real = analyze_path(path).models[0]
    meta = analyze_path(path, config=Config(materialize_limit=0)).models[0]
    assert not meta.materialized
    r, m = real.summary.estimated_attenuation, meta.summary.estimated_attenuation
    assert abs(math.log10(r / m)) < 0.3  # default init: the formula and the draw agree


def test_an_estimator_failure_is_gl001_and_the_rest_survives(write, monkeypatch):
    import gradlint.estimate.propagate as propagate

    def boom(*a, **k):
        raise ZeroDivisionError("synthetic")

    monkeypatch.setattr(propagate, "estimate_graph", boom)
    report = analyze_path(write("deep.py", SIGMOID), select=["GL001", "GL101"])
    codes = {f.code for f in report.findings}
    assert "GL001" in codes and "GL101" in codes
    gl001 = next(f for f in report.findings if f.code == "GL001")
    assert "estimate" in gl001.message
    assert report.models[0].summary.verdict is None
