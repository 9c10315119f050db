"""--verify on the command line: JSON contract, the side-by-side table, --plot, --tensorboard,
usage errors; and the Python API with its pytest helper."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner

import gradlint
from gradlint.cli import main
from gradlint.ir.source import Location
from gradlint.pipeline.records import LayerReport, ModelReport
from gradlint.report.text import disagreement, layer_table
from gradlint.testing import GradientFlowError, assert_gradients_flow

SIGMOID_FILE = """
    import torch
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, width=16):
            super().__init__()
            self.fc = nn.Linear(width, width)
            self.act = nn.Sigmoid()

        def forward(self, x):
            return self.act(self.fc(x))


    class Deep(nn.Module):
        def __init__(self, depth=10):
            super().__init__()
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(self.blocks(x))


    def example_inputs():
        return (torch.randn(8, 16),)
"""


def cli(*args, cwd=None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


# -- JSON contract ---------------------------------------------------------------------------------

def test_cli_verify_json_end_to_end(write, gradlint_cli):
    path = write("deep.py", SIGMOID_FILE)
    code, out, err = gradlint_cli(str(path), "--verify", "--format", "json", "--select", "GL3")
    assert code == 1, err
    m = json.loads(out)["models"][0]
    assert m["status"] == "analyzed" and m["error"] is None
    for layer in m["layers"]:
        assert set(layer) == {"module", "type", "location", "estimate", "measured"}
        assert set(layer["measured"]) == {"grad_ratio", "grad_norm", "grad_rms", "act_rms"}
        assert all(isinstance(v, float) for v in layer["measured"].values())
    assert m["layers"][-1]["measured"]["grad_ratio"] == 1.0
    s = m["summary"]
    assert s["measured_attenuation"] == m["layers"][0]["measured"]["grad_ratio"] < 1e-3
    assert s["measured_verdict"] == "vanishing"
    gl301 = [f for f in m["findings"] if f["code"] == "GL301"]
    assert gl301 and gl301[0]["location"]["line"] == 8


def test_without_verify_there_is_no_measured_key(write):
    path = write("deep.py", SIGMOID_FILE)
    code, out, _ = cli(str(path), "--format", "json")
    m = json.loads(out)["models"][0]
    assert all("measured" not in layer for layer in m["layers"])
    assert m["summary"]["measured_attenuation"] is None and m["summary"]["measured_verdict"] is None


# -- the terminal -------------------------------------------------------------------------------

def test_full_format_shows_measurement_beside_the_estimate(write):
    path = write("deep.py", SIGMOID_FILE)
    code, out, _ = cli(str(path), "--verify", "--format", "full")
    assert "measured" in out and "(vanishing)" in out
    assert "verify: one pass on cpu, inputs example_inputs(), loss random Gaussian projection (seed 0)" in out
    header = next(line for line in out.splitlines() if "meas. ratio" in line)
    assert header.split()[:6] == ["#", "layer", "type", "location", "est.", "ratio"]
    row0 = next(line for line in out.splitlines() if line.split()[:2] == ["0", "blocks.0.fc"])
    est, meas = float(row0.split()[4]), float(row0.split()[6])
    assert "sigmoid sat" in row0 and est < 1e-3 and meas < 1e-3  # estimate and measurement side by side


def test_disagreement_is_marked():
    assert disagreement(1e-3, 2e-3) == ""
    assert disagreement(1e-3, 1e-5) == "!! 100x low"
    assert disagreement(1e-5, 1e-3) == "!! 100x high"
    assert disagreement(None, 1e-3) == ""
    m = ModelReport("m.py::Net", layers=[
        LayerReport("a", "Linear", Location("m.py", 3), {"grad_ratio": 1e-2, "bound": 1.0},
                    {"grad_ratio": 1e-6, "grad_norm": 1e-5, "grad_rms": 1e-7}),
        LayerReport("b", "Linear", Location("m.py", 4), None, {"grad_ratio": 1.0, "grad_norm": 1.0, "grad_rms": 0.1}),
    ])
    rows = layer_table(m).splitlines()
    assert "!! 10000x low" in rows[1] and "1.00e-02" in rows[1] and "1.00e-06" in rows[1]
    assert "!!" not in rows[2] and rows[2].split()[4] == "-"


# -- --plot and --tensorboard ----------------------------------------------------------------------

SMALL_MODEL = """

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            return self.fc(x)
"""


def test_plot_and_tensorboard_files_are_written_and_readable(write, tmp_path):
    import matplotlib.image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = write("deep.py", SIGMOID_FILE + SMALL_MODEL)
    png, tb = tmp_path / "out" / "grad.png", tmp_path / "tb"
    code, out, err = cli(str(path), "--plot", str(png), "--tensorboard", str(tb))  # both imply --verify
    assert code == 1, err
    img = matplotlib.image.imread(str(png))
    assert img.shape[0] > 400 and img.shape[1] > 600
    # the figure is not blank: it has many distinct colours (lines, bars, text)
    assert len({tuple(px) for px in img[::7, ::7].reshape(-1, img.shape[2]).tolist()}) > 20
    assert (tmp_path / "out" / "grad-Small.png").exists()  # the second model gets its own file

    acc = EventAccumulator(str(tb / "Deep"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"grad_ratio/measured", "grad_norm/measured", "delta_norm/measured"} <= set(tags["scalars"])
    ratios = acc.Scalars("grad_ratio/measured")
    assert [e.step for e in ratios] == list(range(11))  # one point per weight layer, by depth
    assert ratios[-1].value == pytest.approx(1.0) and ratios[0].value < 1e-3
    hist = acc.Histograms("grad_log10_abs/by_depth")
    assert len(hist) == 11
    # the first layer's histogram sits decades below the head's
    assert hist[0].histogram_value.max < hist[-1].histogram_value.min
    assert "grad_log10_abs/000_blocks.0.fc" in tags["histograms"]
    assert (tb / "Small").is_dir()


def test_missing_extra_is_a_one_line_usage_error(write, monkeypatch):
    from gradlint.verify import options

    monkeypatch.setattr(options, "installed", lambda module: False)
    path = write("deep.py", SIGMOID_FILE)
    code, out, err = cli(str(path), "--plot", "x.png")
    assert code == 2 and out == ""
    assert err.strip() == ("gradlint: error: --plot needs matplotlib, which is not installed: "
                           "pip install 'gradlint[plot]'")
    code, _, err = cli(str(path), "--tensorboard", "tb")
    assert code == 2 and "pip install 'gradlint[tensorboard]'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_device_cuda_without_cuda_is_a_usage_error(write):
    path = write("deep.py", SIGMOID_FILE)
    code, out, err = cli(str(path), "--verify", "--device", "cuda")
    assert code == 2 and out == ""
    assert "CUDA is not available" in err and "--device cpu" in err


def test_unknown_device_is_a_usage_error(write):
    code, _, err = cli(str(write("deep.py", SIGMOID_FILE)), "--verify", "--device", "tpu")
    assert code == 2 and "expected cpu, cuda, cuda:N or auto" in err


# -- the Python API and the pytest helper ------------------------------------------------------

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)  # the line layers point at
        self.act = nn.Sigmoid()

    def forward(self, x):
        return self.act(self.fc(x))


class Deep(nn.Module):
    def __init__(self, depth=12):
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.blocks(x))


class Healthy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)


def _line_of(text: str) -> int:
    import inspect

    lines, start = inspect.getsourcelines(Block)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_api_returns_the_report_the_cli_renders():
    r = gradlint.analyze(Deep(), torch.randn(8, 16))
    assert r.status == "analyzed" and r.summary.measured_verdict == "vanishing"
    assert r.layers[0].module == "blocks.0.fc"
    assert r.layers[0].location.line == _line_of("self.fc = nn.Linear")  # the assignment, not nn.Linear
    assert r.layers[0].location.path.endswith("test_verify_outputs.py")
    assert any(f.code == "GL301" for f in r.findings)
    assert json.dumps(r.to_json(), allow_nan=False)
    static = gradlint.analyze(Deep(), torch.randn(8, 16), verify=False)
    assert static.summary.measured_verdict is None and static.layers[0].measured is None


def test_assert_gradients_flow_passes_and_fails_with_the_table():
    report = assert_gradients_flow(Healthy(), torch.randn(8, 16))
    assert report.summary.measured_verdict == "healthy"
    with pytest.raises(GradientFlowError) as info:
        assert_gradients_flow(Deep(), torch.randn(8, 16))
    text = str(info.value)
    assert text.startswith("gradients do not flow through Deep: measured attenuation")
    assert "GL301" in text and "meas. ratio" in text and "blocks.11.fc" in text
    assert info.value.report.summary.measured_verdict == "vanishing"
