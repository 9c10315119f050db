"""The results cache: an unchanged file is served without importing torch; editing the file, a
helper module it imports, or the configuration invalidates the entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HELPER = """
import torch.nn as nn


def make_block(width):
    return nn.Sequential(nn.Linear(width, width), nn.{act}())
"""

MODEL = """
import torch.nn as nn
from layers import make_block


class Net(nn.Module):
    def __init__(self, depth=8, width=16):
        super().__init__()
        self.blocks = nn.Sequential(*[make_block(width) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)
"""

# Runs gradlint in-process and reports whether torch got imported.
PROBE = """
import sys, json
from click.testing import CliRunner
from gradlint.cli import main
r = CliRunner().invoke(main, sys.argv[1:])
print(json.dumps({"exit": r.exit_code, "out": r.stdout, "torch": "torch" in sys.modules}))
"""


def probe(cwd: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GRADLINT_NO_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cache_hit_skips_torch_and_invalidates_on_edits(tmp_path):
    (tmp_path / "layers.py").write_text(HELPER.format(act="Sigmoid"))
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    args = ("model.py", "--select", "GL101")

    first = probe(tmp_path, *args)
    assert first["exit"] == 1 and first["torch"] is True and "GL101" in first["out"]
    assert (tmp_path / ".gradlint_cache").is_dir()

    second = probe(tmp_path, *args)
    assert second == {**first, "torch": False}  # same output, served from the cache

    # Editing the imported helper (not the target) must invalidate: ReLU blocks are clean.
    (tmp_path / "layers.py").write_text(HELPER.format(act="ReLU"))
    third = probe(tmp_path, *args)
    assert third["torch"] is True and third["exit"] == 0

    # The output format only changes the rendering: still a hit.
    rendered = probe(tmp_path, *args, "--format", "json")
    assert rendered["torch"] is False and json.loads(rendered["out"])["models"][0]["findings"] == []

    # A different configuration is a different entry.
    fourth = probe(tmp_path, "model.py", "--select", "GL101,GL102")
    assert fourth["torch"] is True

    # --no-cache always analyses.
    assert probe(tmp_path, *args, "--no-cache")["torch"] is True


def test_cache_is_keyed_on_the_target_file_content(tmp_path):
    (tmp_path / "layers.py").write_text(HELPER.format(act="ReLU"))
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    assert probe(tmp_path, "model.py", "--select", "GL101")["exit"] == 0
    model.write_text(MODEL.replace("make_block(width) for", "nn.Sequential(nn.Linear(width, width), nn.Sigmoid()) for"))
    again = probe(tmp_path, "model.py", "--select", "GL101")
    assert again["torch"] is True and again["exit"] == 1


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / ".gradlint_cache").glob("*/*.json"))


class _Payload:
    """Unpickling this runs a shell command: what a planted pickle entry could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_entries_run_no_code_and_are_recomputed(tmp_path):
    import pickle

    (tmp_path / "layers.py").write_text(HELPER.format(act="Sigmoid"))
    (tmp_path / "model.py").write_text(MODEL)
    args = ("model.py", "--select", "GL101")
    first = probe(tmp_path, *args)
    (entry,) = _entries(tmp_path)
    marker = tmp_path / "pwned"

    # A pickle payload where the entry is, and where a pickle-era entry was (no .json suffix).
    payload = pickle.dumps({"format": 2, "result": _Payload(marker)})
    entry.write_bytes(payload)
    entry.with_suffix("").write_bytes(payload)
    again = probe(tmp_path, *args)
    assert not marker.exists()
    assert again == {**first, "torch": True}  # recomputed, same report

    # Valid JSON of the wrong shape: ignored, recomputed, replaced by a good entry.
    entry.write_text(json.dumps({"format": 2, "files": {}, "environment": {},
                                 "result": {"reports": [{"target": 5}]}}))
    assert probe(tmp_path, *args) == {**first, "torch": True}
    assert probe(tmp_path, *args) == {**first, "torch": False}


DATA_MODEL = """
import json
import os
from pathlib import Path

import torch.nn as nn

SETTINGS = json.loads((Path(__file__).parent / "config.json").read_text())
ACT = getattr(nn, os.environ.get("GRADLINT_TEST_ACT", "ReLU"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[m for _ in range(SETTINGS["depth"]) for m in (nn.Linear(8, 8), ACT())])

    def forward(self, x):
        return self.blocks(x)
"""


def test_data_files_and_environment_variables_the_model_reads_key_the_entry(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text('{"depth": 6}')
    (tmp_path / "model.py").write_text(DATA_MODEL)
    monkeypatch.setenv("GRADLINT_TEST_ACT", "Sigmoid")
    args = ("model.py", "--select", "GL101")
    assert probe(tmp_path, *args)["exit"] == 1
    assert probe(tmp_path, *args)["torch"] is False
    (entry,) = _entries(tmp_path)
    stored = json.loads(entry.read_text())
    assert stored["environment"] == {"GRADLINT_TEST_ACT": "Sigmoid"}
    assert str((tmp_path / "config.json").resolve()) in stored["files"]

    (tmp_path / "config.json").write_text('{"depth": 3}')  # a chain of 3 is under GL101's 5
    shallow = probe(tmp_path, *args)
    assert shallow["torch"] is True and shallow["exit"] == 0

    (tmp_path / "config.json").write_text('{"depth": 6}')
    monkeypatch.setenv("GRADLINT_TEST_ACT", "ReLU")
    relu = probe(tmp_path, *args)
    assert relu["torch"] is True and relu["exit"] == 0


def test_an_interrupted_run_keeps_the_entries_it_finished(tmp_path):
    import signal

    (tmp_path / "layers.py").write_text(HELPER.format(act="Sigmoid"))
    (tmp_path / "a_model.py").write_text(MODEL)
    (tmp_path / "b_slow.py").write_text("import time\nimport torch\ntime.sleep(600)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GRADLINT_NO_CACHE", None)
    proc = subprocess.Popen([sys.executable, "-m", "gradlint", "a_model.py", "b_slow.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not _entries(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _entries(tmp_path), "a_model.py was not cached while b_slow.py still ran"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    (entry,) = _entries(tmp_path)
    assert json.loads(entry.read_text())["target"] == "a_model.py"
    assert probe(tmp_path, "a_model.py")["torch"] is False
