"""`gradlint --fix`, `--unsafe-fixes` and `--diff` on whole model files: the rewritten file builds and
re-lints to the verdict the fix predicted, a second run changes nothing, what cannot be rewritten is
`manual` with instructions, and a rewrite that breaks the model is undone."""

from __future__ import annotations

import json
import math
import os
import shutil

from click.testing import CliRunner
from conftest import ROOT

from gradlint.cli import main

EXAMPLE = ROOT / "examples" / "deep_sigmoid_mlp.py"

# sigmoid + LayerNorm: re-initializing cannot help (LayerNorm undoes any weight scale), so only an
# architecture change makes it healthy
SIGMOID_LN = '''\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, depth=20, width=128):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(depth)])
        self.act = nn.Sigmoid()
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        for fc, norm in zip(self.fcs, self.norms):
            x = self.act(norm(fc(x)))
        return self.head(x)


def example_inputs():
    return (torch.randn(64, 128),)
'''

# The same model built from a config: the activation and the norm come from lookups, the loop updates
# its tensor in two statements. No codemod can rewrite it safely.
FROM_CONFIG = '''\
import torch
import torch.nn as nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
NORMS = {"ln": nn.LayerNorm, "bn": nn.BatchNorm1d}
CONFIG = [{"act": "sigmoid", "norm": "ln"}] * 20


class Net(nn.Module):
    def __init__(self, width=128):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in CONFIG])
        self.norms = nn.ModuleList([NORMS[c["norm"]](width) for c in CONFIG])
        self.acts = nn.ModuleList([ACTIVATIONS[c["act"]]() for c in CONFIG])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        for fc, norm, act in zip(self.fcs, self.norms, self.acts):
            x = norm(fc(x))
            x = act(x)
        return self.head(x)


def example_inputs():
    return (torch.randn(64, 128),)
'''


def run_gradlint(*args: str, cwd) -> tuple[int, str, str]:
    """The command line, in-process (torch is imported once for the whole file)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def _json(out: str) -> dict:
    return json.loads(out)


def _model(data: dict) -> dict:
    return data["models"][0]


def _fixes(model: dict) -> list[dict]:
    return next((f["fixes"] for f in model["findings"] if f["fixes"]), [])


def test_diff_prints_the_patch_and_writes_nothing(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "model.py")
    before = (tmp_path / "model.py").read_text()
    code, out, err = run_gradlint("model.py", "--diff", cwd=tmp_path)
    assert code == 1, err
    assert out.startswith("--- a/model.py\n+++ b/model.py\n"), out
    assert "+        self._gradlint_init()" in out and "+    def _gradlint_init(self) -> None:" in out
    assert "--fix would change 1 file" in err
    assert (tmp_path / "model.py").read_text() == before


def test_fix_applies_the_best_safe_fix_and_the_relint_shows_its_verdict(tmp_path):
    path = tmp_path / "model.py"
    shutil.copy(EXAMPLE, path)
    code, out, _ = run_gradlint("model.py", "--format", "json", cwd=tmp_path)
    ranked = _fixes(_model(_json(out)))
    # ranked: healthy first. The safe init that heals a deep sigmoid stack starts many units in the
    # flat tails (its detail says so), so the ReLU swap, healthy with margin, ranks above it.
    assert [f["predicted_verdict"] != "healthy" for f in ranked] == sorted(f["predicted_verdict"] != "healthy"
                                                                          for f in ranked)
    assert ranked[0]["kind"] == "activation" and ranked[0]["applicability"] == "unsafe", ranked
    fixes = [f for f in ranked if f["applicability"] == "safe"]
    assert fixes and fixes[0]["kind"] == "init" and fixes[0]["predicted_verdict"] == "healthy", ranked
    assert "flat tails" in fixes[0]["detail"]

    code, out, err = run_gradlint("model.py", "--fix", "--format", "json", cwd=tmp_path)
    assert f"fixed model.py::DeepSigmoidMLP: {fixes[0]['title']}" in err, err
    after = _model(_json(out))
    assert after["status"] == "analyzed"
    assert after["summary"]["verdict"] == fixes[0]["predicted_verdict"]
    # the prediction uses the init law's expectation, the re-lint the weights drawn (sampling noise)
    assert abs(math.log10(after["summary"]["estimated_attenuation"] / fixes[0]["predicted_attenuation"])) < 0.1
    assert "GL201" not in {f["code"] for f in after["findings"]}
    # what is left (structural warnings) says which fix was applied
    applied = [fx for f in after["findings"] for fx in f["fixes"] if fx["applied"]]
    assert applied and applied[0]["title"] == fixes[0]["title"]
    text = path.read_text()
    assert "nn.Sigmoid()" in text  # a safe fix never touches the architecture

    code, _, err = run_gradlint("model.py", "--fix", cwd=tmp_path)
    assert path.read_text() == text, "a second --fix changed the file again"
    assert "fixed" not in err


def test_unsafe_fixes_change_the_architecture_when_init_cannot_help(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(SIGMOID_LN)
    code, out, _ = run_gradlint("model.py", "--format", "json", cwd=tmp_path)
    fixes = _fixes(_model(_json(out)))
    assert fixes[0]["applicability"] == "unsafe" and fixes[0]["predicted_verdict"] == "healthy", fixes
    assert not any(f["applicability"] == "safe" and f["predicted_verdict"] == "healthy" for f in fixes)

    code, _, err = run_gradlint("model.py", "--fix", cwd=tmp_path)
    assert path.read_text() == SIGMOID_LN or "healthy" not in err  # safe only: no healthy fix to apply

    code, out, err = run_gradlint("model.py", "--fix", "--unsafe-fixes", "--format", "json", cwd=tmp_path)
    after = _model(_json(out))
    assert f"fixed model.py::Net: {fixes[0]['title']}" in err, err
    assert after["summary"]["verdict"] == "healthy"
    # the prediction uses the init law's expectation, the re-lint the weights drawn (sampling noise)
    assert abs(math.log10(after["summary"]["estimated_attenuation"] / fixes[0]["predicted_attenuation"])) < 0.1
    assert path.read_text() != SIGMOID_LN


def test_config_built_models_get_manual_fixes_with_instructions(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(FROM_CONFIG)
    code, out, _ = run_gradlint("model.py", "--format", "json", cwd=tmp_path)
    fixes = _fixes(_model(_json(out)))
    healthy = [f for f in fixes if f["predicted_verdict"] == "healthy"]
    assert healthy and all(f["applicability"] == "manual" and f["edit"] is None for f in healthy), healthy
    act = next(f for f in healthy if f["kind"] == "activation")
    assert "lookup table" in act["detail"] and "nn.ReLU()" in act["detail"]

    code, out, err = run_gradlint("model.py", "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert path.read_text() == FROM_CONFIG
    assert code == 1 and "GL201" in out


def test_show_fixes_prints_the_ranked_table(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "model.py")
    code, out, _ = run_gradlint("model.py", "--show-fixes", cwd=tmp_path)
    assert "fixes, best first (predicted attenuation after the change):" in out
    assert "  1. " in out and "healthy" in out and "safe" in out and "unsafe" in out
    assert out.count("fixes, best first") == 1 and "fixes: as above" in out
    code, out, _ = run_gradlint("model.py", "--format", "full", cwd=tmp_path)
    assert "Redesign:" in out and "after the best fix" in out


def test_a_rewrite_that_breaks_the_model_is_undone(tmp_path):
    """The re-lint is the proof: a model that no longer builds puts its file back."""
    from gradlint.config import Config
    from gradlint.fix.apply import Chosen, Rewrite, commit
    from gradlint.pipeline.records import ModelReport, Summary
    from gradlint.pipeline.run import run
    from gradlint.rules.finding import Fix

    path = tmp_path / "model.py"
    path.write_text(SIGMOID_LN)
    broken = SIGMOID_LN.replace("nn.LayerNorm(width)", "nn.LayerNorm(width + 1)")
    before = ModelReport(target=f"{path}::Net", summary=Summary(1e-9, "vanishing"))
    fix = Fix("a broken edit", "normalization", 0.1, "healthy", "unsafe",
              edit={"changes": [{"op": "swap_norm", "sites": [{"path": str(path), "line": 1, "column": 1}]}]})
    plan = Rewrite(old={str(path): SIGMOID_LN}, new={str(path): broken}, chosen=[Chosen(before, fix, ["GL201"])])
    outcome = commit(plan, lambda: run([str(path)], Config(), {"GL201"})[0])
    assert path.read_text() == SIGMOID_LN
    assert outcome.restored and "does not" in outcome.restored[0][1] and not outcome.applied
    assert fix.applied is False
