"""The language server's parts without a client: which files are analysed, the warm worker
(the buffer's text is analysed, a timeout stops the run and what it started), and findings ->
diagnostics positions."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from gradlint.lsp import runner
from gradlint.lsp.detect import defines_models


@pytest.mark.parametrize("text", [
    "import torch\n",
    "import torch.nn as nn\n",
    "from torch import nn\n",
    "if True:\n    import torch\n",
    "from .layers import Base\n\nclass Net(Base.Module):\n    pass\n",
    "class Net(nn.Module):\n    pass\n",
    "class Net(MyModule, Mixin):\n    pass\n",
])
def test_model_files_are_analysed(text):
    assert defines_models(text)


@pytest.mark.parametrize("text", [
    "",
    "import os\n\ndef f():\n    return 1\n",
    "import torchvision_like_but_not\n",  # not torch
    "# import torch\nx = 1\n",
    "class Config:\n    module = 'x'\n",
])
def test_other_files_are_not(text):
    assert not defines_models(text)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a killed, not yet reaped child is a zombie: dead


def _analyse(worker: runner.WarmWorker, model: Path, timeout: float, text: str | None = None) -> runner.Outcome:
    async def go() -> runner.Outcome:
        try:
            return await worker.analyse(str(model), text, str(model.parent), (), timeout)
        finally:
            await worker.stop()

    return asyncio.run(asyncio.wait_for(go(), 600))


@pytest.mark.skipif(os.name != "posix" or not Path("/proc").is_dir(), reason="process groups via /proc")
def test_timeout_stops_the_run_and_what_it_started(tmp_path):
    pidfile = tmp_path / "child.pid"
    model = tmp_path / "hang.py"
    model.write_text("import subprocess, sys, time\nimport torch\n"
                     "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                     f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
                     "time.sleep(600)\n")
    worker = runner.WarmWorker(sys.executable)
    out = _analyse(worker, model, timeout=8)
    assert not out.ok and "did not finish within 8 s" in out.error and out.findings == []
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the user's child process survived the timeout"


def test_the_buffer_text_is_analysed_not_the_file(tmp_path):
    model = tmp_path / "m.py"
    model.write_text("import torch\n")  # on disk: no model at all
    deep = (ROOT / "examples" / "deep_sigmoid_mlp.py").read_text()
    out = _analyse(runner.WarmWorker(sys.executable), model, timeout=300, text=deep)
    assert out.ok, out.error
    assert "GL101" in {f["code"] for f in out.findings}
    assert all(f["location"]["path"] == str(model) for f in out.findings)


def test_an_interpreter_that_does_not_exist_is_reported(tmp_path):
    out = _analyse(runner.WarmWorker(str(tmp_path / "no-python")), tmp_path / "m.py", timeout=5)
    assert not out.ok and out.error.startswith("cannot run")


def test_an_interpreter_without_torch_is_reported(tmp_path):
    # -I -S: no site-packages, so no torch: the server's gradlint is found, torch is not.
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    script.chmod(0o755)
    model = tmp_path / "m.py"
    model.write_text("import torch\n")
    out = _analyse(runner.WarmWorker(str(script)), model, timeout=30)
    assert not out.ok and "the analysis process exited" in out.error and "No module named" in out.error, out.error


def test_the_worker_runs_this_install_with_the_workspace_off_sys_path():
    from gradlint.pipeline.workers import bootstrap_command

    argv = bootstrap_command("/venv/bin/python", "gradlint.lsp.warm_worker", "main")
    assert argv[:3] == ["/venv/bin/python", "-P", "-c"]
    assert repr(str(ROOT)) in argv[3] and "from gradlint.lsp.warm_worker import main" in argv[3]


def test_report_paths_become_absolute_and_carry_the_target(tmp_path):
    report = {"models": [{"target": "m.py::Net", "findings": [
        {"code": "GL101", "message": "m", "location": {"path": "sub/m.py", "line": 3, "column": 5}}]}]}
    findings = runner.parse_report(json.dumps(report), str(tmp_path))
    assert findings == [{"code": "GL101", "message": "m", "target": "m.py::Net",
                         "location": {"path": str(tmp_path / "sub" / "m.py"), "line": 3, "column": 5}}]
    assert runner.parse_report("Traceback (most recent call last):", str(tmp_path)) is None
    assert runner.parse_report("[]", str(tmp_path)) is None


# -- findings -> diagnostics (needs lsprotocol) ------------------------------------------------
def _units16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _finding(path, line, column, code="GL101", target="m.py::Net"):
    return {"code": code, "name": "deep-saturating-chain", "severity": "error", "message": "msg", "fix": "use ReLU",
            "target": target, "location": {"path": str(path), "line": line, "column": column}}


def test_positions_are_zero_based_in_the_clients_units(tmp_path):
    pytest.importorskip("lsprotocol")
    from gradlint.lsp.diagnostics import to_diagnostics

    path = tmp_path / "m.py"
    lines = ["import torch.nn as nn", "", "        self.größe😀 = nn.Sigmoid()  # noqa-free"]
    text = lines[2]
    byte_col = len(text[: text.index("nn.Sigmoid")].encode("utf-8")) + 1  # what Python reports
    [shown] = to_diagnostics([_finding(path, 3, byte_col)], str(path), lines, _units16)
    r = shown.diagnostic.range
    assert r.start.line == 2
    assert r.start.character == _units16(text[: text.index("nn.Sigmoid")])  # the emoji counts twice
    assert r.end.character == _units16(text)
    assert shown.diagnostic.code == "GL101" and shown.diagnostic.source == "gradlint"
    assert "**Fix:** use ReLU" in shown.hover


def test_a_finding_in_another_file_shows_on_the_model_definition(tmp_path):
    pytest.importorskip("lsprotocol")
    from gradlint.lsp.diagnostics import to_diagnostics

    path = tmp_path / "model.py"
    other = tmp_path / "layers.py"
    lines = ["import torch.nn as nn", "from layers import Block", "", "", "class Net(nn.Module):", "    pass"]
    findings = [_finding(other, 7, 9, target=f"{path}::Net"), _finding(other, 7, 9, target=f"{path}::Net")]
    shown = to_diagnostics(findings, str(path), lines, _units16)
    assert len(shown) == 1  # duplicates from two models collapse
    d = shown[0].diagnostic
    assert d.range.start.line == 4 and "(at layers.py:7:9)" in d.message
    assert d.related_information[0].location.uri == other.as_uri()
    assert d.related_information[0].location.range.start.line == 6


def test_rule_links_point_at_the_rule_pages():
    pytest.importorskip("lsprotocol")
    from gradlint.lsp.diagnostics import _doc_url
    from gradlint.rules import all_rules

    for code in all_rules():
        url = _doc_url(code)
        assert url.endswith(f"/rules/{code}.md") and (ROOT / "rules" / f"{code}.md").is_file()
