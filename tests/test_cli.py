"""The command line: exit codes, output shape, targets, suppression, configuration, GL001."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gradlint.cli import main

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(.+?):(\d+):(\d+): ([A-Z]+\d+) (.*)$")

DEEP_SIGMOID = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.act = nn.Sigmoid(){noqa}

    def forward(self, x):
        return self.act(self.fc(x))


class Deep(nn.Module):
    def __init__(self, depth=8):
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)
"""

GOOD = """
import torch.nn as nn


class Good(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)
"""


def cli(*args, cwd=None):
    runner = CliRunner()
    if cwd is not None:
        import os

        old = os.getcwd()
        os.chdir(cwd)
        try:
            result = runner.invoke(main, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
    else:
        result = runner.invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def deep(noqa=""):
    return DEEP_SIGMOID.format(noqa=noqa)


# -- exit codes and the concise format -----------------------------------------------------------

def test_findings_exit_1_with_linter_lines(write):
    path = write("model.py", deep())
    code, out, _ = cli(str(path), "--select", "GL101")
    assert code == 1
    lines = out.strip().splitlines()
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert m.group(1).endswith("model.py") and m.group(2) == "8" and m.group(3) == "20" and m.group(4) == "GL101"
    assert lines[-1] == "Found 1 problem in 1 of 1 model."


def test_clean_model_exits_0(write):
    code, out, _ = cli(str(write("good.py", GOOD)))
    assert code == 0
    assert out.strip() == "All checks passed: 1 model analyzed."


def test_exit_zero(write):
    code, out, _ = cli(str(write("model.py", deep())), "--select", "GL101", "--exit-zero")
    assert code == 0 and "GL101" in out


def test_check_subcommand_is_the_default(write):
    path = str(write("model.py", deep()))
    assert cli("check", path, "--select", "GL101")[:2] == cli(path, "--select", "GL101")[:2]


def test_show_fixes(write):
    # a vanishing model: the advisor's ranked fixes; without any, the rule's advice
    _, out, _ = cli(str(write("model.py", deep())), "--select", "GL101", "--show-fixes")
    assert "    fixes, best first (predicted attenuation after the change):" in out
    assert "swap Sigmoid -> ReLU" in out
    _, out, _ = cli(str(write("model.py", deep())), "--select", "GL101", "--show-fixes", "--config", str(
        write("pyproject.toml", "[tool.gradlint]\nadvise = false\n")))
    assert "    fix: use ReLU" in out


def test_no_targets_exits_0(tmp_path):
    code, _, err = cli(cwd=tmp_path)
    assert code == 0 and "nothing to analyze" in err


def test_nonexistent_path_is_reported_and_others_still_run(write):
    good = str(write("good.py", GOOD))
    code, out, err = cli("missing.py", good)
    assert code == 2
    assert "missing.py: no such file or folder" in err
    assert "1 model analyzed" in out


# -- targets ---------------------------------------------------------------------------------------

def test_target_with_arguments(write):
    path = write("model.py", deep())
    code, out, _ = cli(f"{path}::Deep(depth=3)", "--select", "GL101")
    assert code == 0, out
    code, out, _ = cli(f"{path}::Deep(depth=12)", "--select", "GL101", "--format", "json")
    data = json.loads(out)
    assert data["models"][0]["target"].endswith("model.py::Deep(depth=12)")
    assert "12 saturating activations" in data["models"][0]["findings"][0]["message"]


def test_factory_target(write):
    path = write("model.py", deep() + "\n\ndef build():\n    return Deep(depth=6)\n")
    code, out, _ = cli(f"{path}::build", "--select", "GL101", "--format", "json")
    data = json.loads(out)
    assert [m["target"].split("::")[1] for m in data["models"]] == ["build"]
    assert code == 1


def test_folder_target_analyses_every_file(tmp_path, write):
    write("pkg/a_bad.py", deep())
    write("pkg/b_good.py", GOOD)
    write("pkg/helpers.py", "X = 1\n")
    code, out, _ = cli(str(tmp_path / "pkg"), "--select", "GL101", "--format", "json")
    data = json.loads(out)
    targets = [Path(m["target"].split("::")[0]).name + "::" + m["target"].split("::")[1] for m in data["models"]]
    assert targets == ["a_bad.py::Deep", "b_good.py::Good"]
    assert code == 1


def test_building_blocks_are_not_reported_as_models(write):
    _, out, _ = cli(str(write("model.py", deep())), "--format", "json")
    assert [m["target"].split("::")[1] for m in json.loads(out)["models"]] == ["Deep"]


def test_bad_target_syntax_is_a_usage_error(write):
    path = write("model.py", GOOD)
    code, _, err = cli(f"{path}::Good(depth=")
    assert code == 2 and "is not a Python expression" in err and len(err.strip().splitlines()) == 1


def test_a_target_expression_that_fails_is_gl001_naming_the_error(write):
    path = write("model.py", GOOD)
    code, out, _ = cli(f"{path}::Good(depth=foo())", "--format", "json")
    model = json.loads(out)["models"][0]
    assert code == 1 and model["status"] == "failed" and model["error"]["stage"] == "build"
    assert "NameError" in model["error"]["message"] and "foo" in model["error"]["message"]


# -- GL001 -----------------------------------------------------------------------------------------

def _gl001(out):
    data = json.loads(out)
    return data["models"]


def test_syntax_error_is_gl001_at_the_line(write):
    path = write("broken.py", "import torch.nn as nn\n\nclass Net(nn.Module:\n    pass\n")
    code, out, err = cli(str(path), "--format", "json")
    assert code == 1 and "Traceback" not in out + err
    m = _gl001(out)[0]
    assert m["status"] == "failed" and m["error"]["stage"] == "import"
    f = m["findings"][0]
    assert f["code"] == "GL001" and f["location"]["line"] == 3 and "SyntaxError" in f["message"]


def test_missing_dependency_is_gl001_with_a_hint(write):
    path = write("needs.py", "import torch.nn as nn\nimport not_a_real_package_xyz\n")
    code, out, _ = cli(str(path), "--format", "json")
    f = _gl001(out)[0]["findings"][0]
    assert code == 1 and f["location"]["line"] == 2
    assert "ModuleNotFoundError" in f["message"] and "not_a_real_package_xyz" in f["fix"]


def test_constructor_error_does_not_hide_the_other_models(write):
    src = GOOD + """

class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("unsupported width")

    def forward(self, x):
        return x
"""
    path = write("mixed.py", src)
    code, out, err = cli(str(path), "--format", "json")
    models = {m["target"].split("::")[1]: m for m in _gl001(out)}
    assert models["Good"]["status"] == "analyzed"
    broken = models["Broken"]
    assert broken["status"] == "failed" and broken["error"]["stage"] == "build"
    assert broken["findings"][0]["location"]["line"] == 16
    assert "RuntimeError: unsupported width" in broken["error"]["message"]
    assert code == 1 and "Traceback" not in err


def test_forward_error_is_a_capture_failure(write):
    src = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x).reshape(3, 7, 11)
"""
    code, out, _ = cli(str(write("net.py", src)), "--format", "json")
    m = _gl001(out)[0]
    assert m["error"]["stage"] == "capture" and m["findings"][0]["location"]["line"] == 10


def test_concise_gl001_line(write):
    path = write("broken.py", "import torch.nn as nn\nraise ImportError('cannot import name Foo')\n")
    code, out, _ = cli(str(path))
    assert code == 1
    assert LINE.match(out.splitlines()[0]).group(4) == "GL001"
    assert "import failed: ImportError: cannot import name Foo" in out


def test_file_without_models(write):
    code, out, err = cli(str(write("utils.py", "def helper():\n    return 1\n")))
    assert code == 0 and "no models found" in err


def test_unknown_attribute_target_is_a_usage_error_listing_the_names(write):
    path = write("m.py", GOOD + "\n\ndef build():\n    return Good()\n")
    code, out, err = cli(f"{path}::Goood", f"{path}::Good", "--format", "json")
    assert code == 2
    line = next(ln for ln in err.splitlines() if "Goood" in ln)
    assert "defines no 'Goood'" in line and "did you mean 'Good'?" in line and "Good, build" in line
    # the other target is still analysed and reported
    assert [m["target"].rsplit("::", 1)[1] for m in json.loads(out)["models"]] == ["Good"]


# -- suppression -----------------------------------------------------------------------------------

def test_noqa_on_the_reported_line(write):
    code, out, _ = cli(str(write("model.py", deep("  # noqa: GL101"))), "--select", "GL101")
    assert code == 0 and "GL101" not in out


def test_noqa_for_another_code_does_not_suppress(write):
    code, _, _ = cli(str(write("model.py", deep("  # noqa: GL102"))), "--select", "GL101")
    assert code == 1


def test_bare_noqa_suppresses_everything_on_the_line(write):
    code, _, _ = cli(str(write("model.py", deep("  # NOQA"))), "--select", "GL101")
    assert code == 0


def test_file_level_noqa(write):
    code, _, _ = cli(str(write("model.py", "# gradlint: noqa\n" + deep())), "--select", "GL1")
    assert code == 0
    code, out, _ = cli(str(write("model2.py", "# gradlint: noqa: GL102\n" + deep())), "--select", "GL101,GL102")
    assert code == 1 and "GL101" in out and "GL102" not in out


# -- configuration ---------------------------------------------------------------------------------

def test_pyproject_ignore_and_cli_precedence(tmp_path, write):
    write("pyproject.toml", '[tool.gradlint]\nignore = ["GL101"]\n')
    path = write("model.py", deep())
    _, out, _ = cli(str(path), "--format", "json")
    found = {f["code"] for f in json.loads(out)["models"][0]["findings"]}
    assert "GL101" not in found
    # a CLI --ignore replaces the file's ignore list
    _, out, _ = cli(str(path), "--format", "json", "--ignore", "GL104")
    found = {f["code"] for f in json.loads(out)["models"][0]["findings"]}
    assert "GL101" in found and "GL104" not in found


def test_select_prefix_and_all(write):
    path = write("model.py", deep())
    _, out, _ = cli(str(path), "--select", "GL10", "--format", "json")
    assert {f["code"] for f in json.loads(out)["models"][0]["findings"]} <= {"GL101", "GL102", "GL103", "GL104"}
    _, out_all, _ = cli(str(path), "--select", "ALL", "--format", "json")
    assert "GL101" in {f["code"] for f in json.loads(out_all)["models"][0]["findings"]}


def test_rule_options_in_pyproject(write):
    write("pyproject.toml", '[tool.gradlint.rules.deep-saturating-chain]\nmin-chain = 9\n')
    code, out, _ = cli(str(write("model.py", deep())), "--select", "GL101")
    assert code == 0, out


def test_per_file_ignores(tmp_path, write):
    write("pyproject.toml", '[tool.gradlint]\nper-file-ignores = {"experiments/*" = ["GL1"]}\n')
    write("experiments/model.py", deep())
    code, out, _ = cli(str(tmp_path / "experiments" / "model.py"), "--select", "GL101", cwd=tmp_path)
    assert code == 0, out


def test_unknown_config_key_names_the_key(write):
    write("pyproject.toml", '[tool.gradlint]\nselct = ["GL1"]\n')
    code, _, err = cli(str(write("model.py", GOOD)))
    assert code == 2 and "selct: unknown key" in err and "select" in err


def test_wrong_config_type_names_the_expected_type(write):
    write("pyproject.toml", '[tool.gradlint]\nvanishing-threshold = "small"\n')
    code, _, err = cli(str(write("model.py", GOOD)))
    assert code == 2 and "vanishing-threshold: expected a positive number" in err


def test_broken_toml_is_a_config_error(write):
    write("pyproject.toml", '[tool.gradlint\nselect = 1\n')
    code, _, err = cli(str(write("model.py", GOOD)))
    assert code == 2 and "invalid TOML" in err and len(err.strip().splitlines()) == 1


def test_invalid_select_code(write):
    code, _, err = cli(str(write("model.py", GOOD)), "--select", "GL999")
    assert code == 2 and "unknown rule selector 'GL999'" in err


def test_models_from_config(tmp_path, write):
    write("pyproject.toml", '[tool.gradlint]\nmodels = ["nets/model.py::Deep(depth=7)"]\n')
    write("nets/model.py", deep())
    code, out, _ = cli("--select", "GL101", "--format", "json", cwd=tmp_path)
    data = json.loads(out)
    assert code == 1 and data["models"][0]["target"].endswith("model.py::Deep(depth=7)")


# -- rule docs ---------------------------------------------------------------------------------

def test_rule_command_prints_docs():
    code, out, _ = cli("rule", "GL101")
    assert code == 0 and out.startswith("# GL101 deep-saturating-chain") and "## Why is this bad?" in out
    assert cli("rule", "deep-saturating-chain")[1] == out


def test_rule_all_lists_every_rule():
    from gradlint.rules import all_rules

    code, out, _ = cli("rule", "--all")
    assert code == 0
    assert [line.split()[0] for line in out.strip().splitlines()] == list(all_rules())


def test_unknown_rule():
    code, _, err = cli("rule", "GL999")
    assert code == 2 and "unknown rule" in err


def test_help_and_rule_do_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom gradlint.cli import main\n"
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0\n"
            "r = CliRunner().invoke(main, ['rule', 'GL101']); assert r.exit_code == 0\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# -- JSON contract -----------------------------------------------------------------------------

def test_json_contract_shape(write):
    path = write("model.py", deep())
    code, out, _ = cli(str(path), "--format", "json")
    data = json.loads(out)
    assert set(data) == {"gradlint", "schema", "models"} and data["schema"] == 2
    m = data["models"][0]
    assert set(m) == {"target", "status", "error", "capture", "layers", "summary", "findings"}
    assert m["status"] == "analyzed" and m["error"] is None and m["capture"] in ("fx", "export", "hooks")
    assert set(m["summary"]) == {"estimated_attenuation", "verdict", "measured_attenuation", "measured_verdict"}
    assert [layer["module"] for layer in m["layers"]] == [f"blocks.{i}.fc" for i in range(8)]
    for layer in m["layers"]:
        assert set(layer) == {"module", "type", "location", "estimate"}
        assert layer["type"] == "Linear" and layer["location"]["line"] == 7
    for f in m["findings"]:
        assert set(f) == {"code", "name", "severity", "message", "fix", "location", "fixes"}
        assert set(f["location"]) == {"path", "line", "column"}
        for fx in f["fixes"]:  # Schema 2: fixes with their predicted effect, best first
            assert {"title", "kind", "predicted_attenuation", "predicted_verdict", "applicability", "applied"} <= set(fx)
            assert fx["kind"] in ("init", "activation", "normalization", "residual", "gate", "other")
            assert fx["applicability"] in ("safe", "unsafe", "manual") and fx["applied"] is False


def test_debug_shows_the_traceback_only_when_asked(write):
    path = write("boom.py", "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                            "        super().__init__()\n        raise ValueError('boom')\n\n"
                            "    def forward(self, x):\n        return x\n")
    code, out, err = cli(str(path))
    assert code == 1 and "Traceback" not in out + err
    code, out, err = cli(str(path), "--debug")
    assert code == 1 and "Traceback" in err and "ValueError: boom" in err
