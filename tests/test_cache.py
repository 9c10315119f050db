"""The results cache: an unchanged file is served without importing torch; editing the file, a
helper module it imports, or the configuration invalidates the entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
