"""Real pre-commit, on a temporary git repository, with the `repo: local` / `language: system`
hook the README recommends for torch projects: it fails on a bad model and passes on a good one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BAD = (ROOT / "examples" / "deep_sigmoid_mlp.py").read_text()
GOOD = (ROOT / "examples" / "resnet_small.py").read_text()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "ci@example.com")
    _git(repo, "config", "user.name", "CI")
    # The README's local hook; `entry` runs this interpreter's gradlint (the project's environment).
    (repo / ".pre-commit-config.yaml").write_text(f"""
repos:
  - repo: local
    hooks:
      - id: gradlint
        name: gradlint
        entry: {sys.executable} -m gradlint --with-dependents
        language: system
        types: [python]
        files: ^models/
        require_serial: true
""")
    return repo


def _pre_commit(repo: Path, tmp_path: Path, *files: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "pc-home"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GRADLINT_NO_CACHE", None)  # a hook run keeps its cache, and with it the dependencies
    exe = Path(sys.executable).with_name("pre-commit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pre_commit"]
    which = ["--files", *files] if files else ["--all-files"]
    return subprocess.run([*cmd, "run", *which], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def test_hook_fails_on_a_bad_model_and_passes_on_a_good_one(repo, tmp_path):
    model = repo / "models" / "net.py"
    model.write_text(BAD)
    _git(repo, "add", "-A")
    bad = _pre_commit(repo, tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "models/net.py:14:20: GL101" in bad.stdout
    assert "Failed" in bad.stdout

    model.write_text(GOOD)
    _git(repo, "add", "-A")
    good = _pre_commit(repo, tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


def test_hook_definition_is_valid():
    import yaml  # pre-commit depends on PyYAML

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "gradlint" and hook["language"] == "python" and hook["entry"] == "gradlint --with-dependents"
    assert hook["require_serial"] is True


HELPER = """
import torch.nn as nn


def make_block(width):
    return nn.Sequential({layers})
"""
HEALTHY = "nn.Linear(width, width), nn.LayerNorm(width), nn.ReLU()"
SATURATING = "nn.Linear(width, width), nn.Sigmoid()"

USES_HELPER = """
import torch.nn as nn
from layers import make_block


class Net(nn.Module):
    def __init__(self, depth=8, width=16):
        super().__init__()
        self.blocks = nn.Sequential(*[make_block(width) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)
"""


def test_a_changed_helper_relints_the_models_that_import_it(repo, tmp_path):
    (repo / "models" / "layers.py").write_text(HELPER.format(layers=HEALTHY))
    (repo / "models" / "net.py").write_text(USES_HELPER)
    _git(repo, "add", "-A")
    first = _pre_commit(repo, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr

    # Only the helper changed: the hook is given layers.py alone, which defines no model.
    (repo / "models" / "layers.py").write_text(HELPER.format(layers=SATURATING))
    _git(repo, "add", "-A")
    changed = _pre_commit(repo, tmp_path, "models/layers.py")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    # net.py was analysed (its layers are made in layers.py, where the findings point)
    assert "models/layers.py:6:" in changed.stdout and "GL101" in changed.stdout
    assert "in 1 of 1 model" in changed.stdout and "no models found" not in changed.stdout
