"""The report as JSON data (what a worker sends over its pipe and the cache stores) round-trips:
every renderer draws the same from a decoded report as from the one built in-process, and data
of the wrong shape is refused."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from conftest import ROOT

from gradlint.config import Config
from gradlint.ir.source import Location
from gradlint.pipeline import serialize
from gradlint.pipeline.records import FileResult, ModelReport, Report
from gradlint.pipeline.run import run
from gradlint.pipeline.serialize import ShapeError, from_plain, to_plain
from gradlint.rules import select_rules


@pytest.fixture(scope="module")
def analysed() -> FileResult:
    """Both kinds of result: a model with its estimate and measurement (--verify), and a failure."""
    enabled = select_rules(["ALL"], [], [])
    report, session = run([str(ROOT / "examples" / "deep_sigmoid_mlp.py"), str(ROOT / "examples" / "resnet_small.py")],
                          Config(verify=True), enabled, isolate=False)
    assert not session.internal_errors
    broken, _ = run([str(ROOT / "tests" / "test_serialize.py") + "::Nope"], Config(), enabled, isolate=False)
    return FileResult(reports=report.models, messages=["a note"], environment={"HOME": "/x", "UNSET": None},
                      opened_files=["/p/config.json"], usage_errors=broken.usage_errors)


def round_trip(result: FileResult) -> FileResult:
    return serialize.loads(serialize.dumps(result, FileResult), FileResult)


def test_the_full_report_round_trips(analysed):
    back = round_trip(analysed)
    assert to_plain(back, FileResult) == to_plain(analysed, FileResult)
    m = back.reports[0]
    assert m.estimate is not None and m.measurement is not None and m.graph is None  # the graph stays in-process
    assert m.estimate.layers[0].causes and m.estimate.flow and m.estimate.edge_gains
    assert isinstance(next(iter(m.estimate.edge_gains)), tuple)
    assert all(isinstance(h, int) for h in m.measurement.layers[0].hist)
    assert isinstance(m.findings[0].location, Location)


def _render_all(report: Report) -> dict[str, str]:
    from gradlint.report import formats
    from gradlint.report.statistics import render_statistics

    out = {}
    for name in formats.names():
        buf = io.StringIO()
        formats.render(name, report, buf, show_fixes=True, chart=True)
        out[name] = buf.getvalue()
    buf = io.StringIO()
    render_statistics(report, buf, as_json=True)
    out["statistics"] = buf.getvalue()
    return out


def test_renderers_draw_the_same_from_a_decoded_report(analysed):
    direct = Report(models=analysed.reports)
    decoded = Report(models=round_trip(analysed).reports)
    a, b = _render_all(direct), _render_all(decoded)
    assert a.keys() == b.keys() and {"concise", "full", "json", "sarif", "github", "mermaid"} <= a.keys()
    for name in a:
        assert a[name] == b[name], name
    assert "gradient RMS per weight layer" in a["full"] and "graph TD" in a["mermaid"]


SMALL = """
import torch
import torch.nn as nn


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)


def example_inputs():
    return (torch.randn(4, 8),)
"""


def test_plot_and_tensorboard_are_the_same_from_a_decoded_report(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    (tmp_path / "small.py").write_text(SMALL)  # few layers: a picture per layer is slow to draw
    report, _ = run([str(tmp_path / "small.py")], Config(verify=True), select_rules(None, [], []), isolate=False)
    analysed = FileResult(reports=report.models)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gradlint.report.outputs import write_files

    def draw(models: list[ModelReport], folder: Path) -> tuple[list[bytes], list]:
        config = Config(plot=str(folder / "grad.png"), tensorboard=str(folder / "tb"))
        paths = write_files(Report(models=models), config)
        pngs = [Path(p).read_bytes() for p in paths if p.endswith(".png")]
        events = []
        for run_dir in sorted(p for p in paths if not p.endswith(".png")):
            acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "histograms": 0})
            acc.Reload()
            tags = acc.Tags()
            events.append(([(t, [(e.step, e.value) for e in acc.Scalars(t)]) for t in sorted(tags["scalars"])],
                           [(t, [(e.step, e.histogram_value) for e in acc.Histograms(t)]) for t in sorted(tags["histograms"])]))
        return pngs, events

    direct = draw(analysed.reports, tmp_path / "a")
    decoded = draw(round_trip(analysed).reports, tmp_path / "b")
    assert direct[0] and direct[1]  # something was drawn
    assert direct == decoded


@pytest.mark.parametrize("bad", [
    None, [], "x", {"reports": 5}, {"reports": [{"target": 5}]}, {"reports": [{"status": "failed"}]},
    {"reports": [], "surprise": 1}, {"messages": [1]}, {"environment": {"A": 1}},
    {"reports": [{"target": "t", "findings": [{"code": "GL1"}]}]},
    {"reports": [{"target": "t", "estimate": {"layers": [], "attenuation": None, "first": None, "unhandled": [],
                                              "assumptions": [], "flow": [], "edge_gains": [[[1, 2], "x"]]}}]},
    {"reports": [{"target": "t", "layers": [{"module": "m", "type": "Linear",
                                             "location": {"$type": "Evil", "path": "p", "line": 1}}]}]},
])
def test_data_of_the_wrong_shape_is_refused(bad):
    with pytest.raises(ShapeError):
        from_plain(bad, FileResult)


def test_non_finite_numbers_and_tuples_survive():
    from gradlint.verify.measurement import Measurement

    m = Measurement(layers=[], activations=[], device="cpu", loss="l", input_source="s", loss_value=math.inf,
                    nonfinite_origin={"what": "nan", "location": Location("m.py", 3, 4), "pair": (1, 2)})
    back = serialize.loads(serialize.dumps(m, Measurement), Measurement)
    assert back.loss_value == math.inf and back.nonfinite_origin == m.nonfinite_origin
    assert math.isnan(serialize.loads(serialize.dumps(math.nan, float), float))


def test_values_that_cannot_be_stored_are_refused_when_written():
    with pytest.raises(ShapeError):
        to_plain(ModelReport(target="t", notes=[object()]), ModelReport)
    with pytest.raises(ShapeError):
        to_plain(FileResult(environment={"A": 3}), FileResult)
