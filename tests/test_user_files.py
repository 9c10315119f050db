"""Model files as people write them (tests/fixtures/user_files/), analysed with no wrapper file:
plain ``gradlint FILE`` (or a target expression), checking what was analysed and how."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import analyze_path

ROOT = Path(__file__).resolve().parent.parent
FILES = Path(__file__).resolve().parent / "fixtures" / "user_files"


def cli(*args: str, cwd: Path = FILES, env: dict | None = None) -> tuple[int, str, str]:
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def models(report) -> dict[str, object]:
    return {m.target.split("::", 1)[1]: m for m in report.models}


def analyzed(report) -> dict[str, object]:
    found = models(report)
    assert all(m.status == "analyzed" for m in found.values()), [(t, m.status, m.error) for t, m in found.items()]
    return found


# -- importing like a script ------------------------------------------------------------------------

def test_argparse_at_import_sees_only_the_file_in_argv():
    argv, path = list(sys.argv), list(sys.path)
    found = analyzed(analyze_path(FILES / "argparse_at_import.py"))
    assert list(found) == ["Net"] and len(found["Net"].layers) == 3
    assert sys.argv == argv and sys.path == path  # put back afterwards


def test_a_file_in_a_subfolder_imports_the_repositorys_own_package():
    path = list(sys.path)
    found = analyzed(analyze_path(FILES / "repo" / "scripts" / "train_mlp.py"))
    assert list(found) == ["ResidualMLP"] and len(found["ResidualMLP"].layers) == 5
    assert sys.path == path


def test_cwd_and_sys_path_are_restored_after_an_import_that_changes_them(write, tmp_path):
    path = write("wanders.py", """
        import os, sys
        import torch.nn as nn
        sys.path.insert(0, "/nonexistent/gradlint-test")
        os.chdir(os.path.dirname(os.path.abspath(__file__)) + "/..")


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)
        """)
    cwd, sys_path = os.getcwd(), list(sys.path)
    found = analyzed(analyze_path(path))
    assert list(found) == ["Net"]
    assert os.getcwd() == cwd and sys.path == sys_path


def test_the_constructor_runs_once_even_with_verify(write, tmp_path):
    write("counted.py", """
        import sys
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                print("constructing Net", file=sys.stderr)
                self.fc1 = nn.Linear(8, 8)
                self.fc2 = nn.Linear(8, 2)

            def forward(self, x):
                return self.fc2(self.fc1(x).relu())
        """)
    code, out, err = cli("counted.py", "--verify", "--format", "json", cwd=tmp_path)
    report = json.loads(out)
    assert report["models"][0]["status"] == "analyzed" and report["models"][0]["summary"]["measured_verdict"]
    assert err.count("constructing Net") == 1, err


# -- discovery --------------------------------------------------------------------------------------

def test_a_config_dataclass_is_built_and_the_activation_helper_is_skipped():
    found = analyzed(analyze_path(FILES / "config_dataclass.py"))
    # NewGELU (weightless) and Block (a building block) are not models; GPT gets its config object
    assert list(found) == ["GPT(GPTConfig())"]
    gpt = found["GPT(GPTConfig())"]
    assert [ly.module for ly in gpt.layers][-1] == "lm_head" and len(gpt.layers) >= 8
    assert "token ids" in gpt.input_source and not gpt.findings


def test_a_target_expression_builds_a_config_object_in_the_files_namespace():
    small = analyzed(analyze_path(f"{FILES / 'config_dataclass.py'}::GPT(GPTConfig(n_layer=1, n_embd=16))"))
    default = analyzed(analyze_path(FILES / "config_dataclass.py"))
    [m] = small.values()
    assert m.target.endswith("::GPT(GPTConfig(n_layer=1, n_embd=16))")
    assert len(m.layers) == len(next(iter(default.values())).layers) - 4  # two blocks of (fc, proj) fewer


def test_factory_functions_are_found_without_calling_anything_else():
    found = analyzed(analyze_path(FILES / "factory_functions.py"))
    assert list(found) == ["ResNet8", "ResNet14"]  # test() returns nothing: never called
    assert len(found["ResNet8"].layers) == 10 and len(found["ResNet14"].layers) == 16
    # the flatten before the head fits only 32x32 images: found without a failed capture
    assert "asks for" in found["ResNet8"].input_source
    assert found["ResNet8"].graph.inputs[0].out_shape[-2:] == (32, 32)
    assert not any("rejected" in n for n in found["ResNet8"].notes)


def test_a_module_level_instance_is_analysed_as_it_is():
    found = analyzed(analyze_path(FILES / "module_level_instance.py"))
    assert list(found) == ["model"] and len(found["model"].layers) == 3  # not the loss


WRAPPER = """
import torch.nn as nn


class Algorithm:
    '''Like stable-baselines3's PPO: not a module, but it holds the policy network.'''
    def __init__(self, hidden=16):
        self.policy = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        self.gamma = 0.99
"""


def test_the_model_a_module_level_wrapper_holds_is_analysed(write):
    path = write("algo.py", WRAPPER + "\n\nalgo = Algorithm()\n")
    found = analyzed(analyze_path(path))
    assert list(found) == ["algo.policy"] and len(found["algo.policy"].layers) == 2


def test_a_file_that_builds_nothing_it_can_find_is_gl002_naming_what_it_has(write, tmp_path):
    write("algo.py", WRAPPER + "\n\ndef build():\n    return Algorithm().policy\n")
    code, out, err = cli("algo.py", "--format", "json", cwd=tmp_path)
    [m] = json.loads(out)["models"]
    assert code == 1 and m["status"] == "not-built" and m["target"] == "algo.py"
    [f] = m["findings"]
    assert f["code"] == "GL002" and "build() may return one" in f["message"] and "gradlint algo.py::build" in f["message"]
    code, out, _ = cli("algo.py::build", "--format", "json", cwd=tmp_path)  # ... and that target works
    assert json.loads(out)["models"][0]["status"] == "analyzed"


def test_a_factory_returning_the_network_inside_a_wrapper_wins_over_the_wrapper(write):
    write("detectors.py", """
        import torch.nn as nn


        class Detector(nn.Module):
            # like ultralytics' YOLO: a module whose train() starts a training run
            def __init__(self):
                super().__init__()
                self.model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))

            def train(self, mode=True):
                raise RuntimeError("would download a dataset and train")

            def forward(self, source):
                raise RuntimeError("predicts on image files")
        """)
    path = write("yolo_style.py", """
        from detectors import Detector

        yolo = Detector()


        def build():
            return yolo.model
        """)
    found = analyzed(analyze_path(path))
    assert list(found) == ["build"] and len(found["build"].layers) == 2


def test_a_literal_call_in_the_file_builds_the_class():
    found = analyzed(analyze_path(FILES / "literal_call.py"))
    assert list(found) == ['VGG("VGG-tiny")'] and len(found['VGG("VGG-tiny")'].layers) == 4


def test_a_class_nothing_can_build_is_gl002_with_the_target_to_write():
    report = analyze_path(FILES / "repo" / "reachpkg" / "vocoder.py", select=["ALL"])
    found = models(report)
    assert set(found) == {"Discriminator", "Generator"}  # not ResBlock (a block), not Snake (weightless)
    assert found["Discriminator"].status == "analyzed"
    gen = found["Generator"]
    assert gen.status == "not-built" and [f.code for f in gen.findings] == ["GL002"]
    finding = gen.findings[0]
    assert finding.location.line == 16 and finding.location.path.endswith("vocoder.py")
    assert "needs h" in finding.message and "vocoder.py::Generator(h=...)'" in finding.message
    assert "build_generator.py:13: Generator(h)" in finding.message  # how the repository builds it


def test_a_guess_that_fails_to_build_is_gl002_not_gl001(write):
    path = write("guess.py", """
        from dataclasses import dataclass
        import torch.nn as nn


        @dataclass
        class NetConfig:
            width: int = 0  # must be set: no usable default


        class Net(nn.Module):
            def __init__(self, config):
                super().__init__()
                assert config.width > 0, "set config.width"
                self.fc = nn.Linear(config.width, config.width)

            def forward(self, x):
                return self.fc(x)
        """)
    [m] = analyze_path(path, select=["ALL"]).models
    assert m.status == "not-built" and [f.code for f in m.findings] == ["GL002"]
    assert "Net(NetConfig()) failed to build" in m.findings[0].message and "set config.width" in m.findings[0].message


def test_an_explicit_file_with_nothing_to_build_says_so(write, tmp_path):
    write("helpers_only.py", """
        import torch
        import torch.nn as nn


        class Swish(nn.Module):
            def forward(self, x):
                return x * torch.sigmoid(x)
        """)
    code, out, err = cli("helpers_only.py", cwd=tmp_path)
    assert code == 0 and "no models found" in err and "helpers_only.py" in err


# -- inputs -----------------------------------------------------------------------------------------

def test_the_first_weight_layer_called_decides_the_inputs():
    found = analyzed(analyze_path(FILES / "registered_before_called.py"))
    m = found["TokenTransformer"]
    assert "embed (Embedding)" in m.input_source and not m.graph.inputs[0].attrs.get("float", True)


def test_a_two_input_forward_gets_two_inputs():
    found = analyzed(analyze_path(FILES / "two_input_forward.py"))
    m = found["WaveDiscriminator"]
    assert len(m.graph.inputs) == 2 and len(m.layers) == 4


def test_input_shape_takes_a_dtype_and_one_shape_per_input():
    code, out, err = cli("two_input_forward.py", "--input-shape", "8,1,256", "--input-shape", "float:8,1,512",
                         "--format", "json")
    [m] = json.loads(out)["models"]
    assert m["status"] == "analyzed", err
    code, out, err = cli("registered_before_called.py", "--input-shape", "long:4,35", "--format", "json")
    [m] = json.loads(out)["models"]
    assert m["status"] == "analyzed", err
    code, _, err = cli("registered_before_called.py", "--input-shape", "complex8:4,35")
    assert code == 2 and "unknown dtype 'complex8'" in err and len(err.strip().splitlines()) == 1


def test_input_shape_in_pyproject_takes_the_same_forms(tmp_path):
    from gradlint.config import ConfigError, InputShape, load_config

    p = tmp_path / "pyproject.toml"
    p.write_text('[tool.gradlint]\ninput-shape = ["long:8,35", [8, 80]]\n')
    assert load_config(p).input_shape == [InputShape((8, 35), "int64"), InputShape((8, 80), None)]
    p.write_text('[tool.gradlint]\ninput-shape = [8, 3, 32, 32]\n')
    assert load_config(p).input_shape == [InputShape((8, 3, 32, 32), None)]
    p.write_text('[tool.gradlint]\ninput-shape = "8,0"\n')
    with pytest.raises(ConfigError, match="input-shape"):
        load_config(p)


def test_einops_patches_make_an_image_input():
    found = analyzed(analyze_path(FILES / "einops_patches.py"))
    m = found["ViT"]
    assert m.graph.inputs[0].out_shape == (8, 3, 32, 32)  # the grid the position table was made for
    assert "Rearrange" in m.input_source and m.summary.verdict == "healthy"


def test_a_functional_rearrange_makes_an_image_input_too(write):
    path = write("patches.py", """
        import torch
        import torch.nn as nn
        from einops import rearrange


        class PatchMLP(nn.Module):
            def __init__(self, patch=4, dim=24):
                super().__init__()
                self.patch = patch
                self.embed = nn.Linear(3 * patch * patch, dim)
                self.pos = nn.Parameter(torch.zeros(1, 36, dim))
                self.head = nn.Linear(dim, 5)

            def forward(self, img):
                p = self.patch
                x = rearrange(img, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
                b, n, _ = x.shape
                return self.head((self.embed(x) + self.pos[:, :n]).mean(1))
        """)
    found = analyzed(analyze_path(path))
    assert found["PatchMLP"].graph.inputs[0].out_shape == (8, 3, 24, 24)  # 6 x 6 patches, as the table


@pytest.mark.parametrize("limit", [10 ** 9, 10_000])
def test_an_atari_cnn_gets_84x84_frames_on_cpu_and_on_meta(limit):
    found = analyzed(analyze_path(FILES / "atari_cnn.py", materialize_limit=limit))
    m = found["QNetwork"]
    assert m.materialized is (limit > 10_000)
    assert m.graph.inputs[0].out_shape == (8, 4, 84, 84) and len(m.layers) == 5


def test_sparse_example_inputs_flow_through_the_estimate_and_verify():
    found = analyzed(analyze_path(FILES / "sparse_gcn.py", verify=True))
    m = found["GCN"]
    assert [ly.module for ly in m.layers] == ["gc1", "gc2"]
    est, meas = m.layers[0].estimate["grad_ratio"], m.layers[0].measured["grad_ratio"]
    assert est is not None and meas is not None and abs(est / meas - 1) < 0.3


# -- the cache --------------------------------------------------------------------------------------

def test_a_missing_module_is_never_served_from_the_cache(tmp_path):
    (tmp_path / "model.py").write_text(
        "import torch.nn as nn\nimport gl_reach_not_installed\n\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n\n    def forward(self, x):\n        return self.fc(x)\n")
    site = tmp_path / "site"
    site.mkdir()
    env = {"GRADLINT_NO_CACHE": ""}
    code, out, _ = cli("model.py", "--format", "json", cwd=tmp_path, env=env)
    assert code == 1 and "gl_reach_not_installed" in out
    (site / "gl_reach_not_installed.py").write_text("")  # the user installs it
    code, out, err = cli("model.py", "--format", "json", cwd=tmp_path,
                         env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"})
    assert code == 0 and json.loads(out)["models"][0]["status"] == "analyzed", err


# -- the pieces -------------------------------------------------------------------------------------

def test_targets_are_expressions_and_bad_ones_are_usage_errors():
    from gradlint.load.targets import TargetError, parse_target

    t = parse_target("m.py::GPT(GPTConfig(n_layer=4))")
    assert (t.path, t.expr, t.name, t.is_name) == ("m.py", "GPT(GPTConfig(n_layer=4))", "GPT", False)
    assert parse_target("m.py::build").is_name and parse_target("m.py").expr is None
    assert parse_target("m.py::models.Net(3)").name == "models"
    for bad in ("m.py::", "m.py::Net(", "m.py::x = 1"):
        with pytest.raises(TargetError):
            parse_target(bad)


def test_the_source_scan_reads_factories_without_running_them():
    from gradlint.load.source_scan import scan_source

    scan = scan_source(
        "import torch.nn as nn\n"
        "def a():\n    return Net(3).to('cpu').eval()\n"
        "def b():\n    m = nn.Sequential(nn.Linear(2, 2))\n    return m\n"
        "def c():\n    return a(), 1\n"
        "def d():\n    print('x')\n"
        "net = Net(4)\n"
        "if __name__ == '__main__':\n    other = Net(5)\n")
    assert scan.returns == {"a": ["Net"], "b": ["nn.Sequential"]}
    assert [c.text for c in scan.calls if c.callee == "Net"] == ["Net(3)", "Net(4)", "Net(5)"]
    assert "net" in scan.module_names and "other" not in scan.module_names


def test_the_allocation_guard_stops_before_allocating():
    import torch

    from gradlint.load.build import TooLarge, allocation_guard

    with allocation_guard(1000):
        torch.empty(10, 10)  # 100 elements: fine
    guard = allocation_guard(1000)
    with pytest.raises(TooLarge):
        with guard:
            torch.nn.Embedding(10 ** 9, 1024)  # would be 4 TB: refused before allocating
    assert guard.tripped and guard.total <= 1000


def test_a_model_over_materialize_limit_is_built_on_meta_and_its_init_recorded(write):
    import math

    path = write("big.py", """
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(256, 256)
                self.fc2 = nn.Linear(256, 256)
                self.fc3 = nn.Linear(256, 10)
                nn.init.normal_(self.fc2.weight, std=0.003)  # shrinks fc1's gradient ~8x vs the default

            def forward(self, x):
                return self.fc3(self.fc2(self.fc1(x)))
        """)
    [meta] = analyze_path(path, materialize_limit=1000).models
    [cpu] = analyze_path(path).models
    assert meta.materialized is False and cpu.materialized is True
    assert meta.parameters == cpu.parameters == 2 * (256 * 256 + 256) + 2570
    # the meta build read the law the init code left in fc2 (the default init would be 8x off)
    ratio = meta.summary.estimated_attenuation / cpu.summary.estimated_attenuation
    assert abs(math.log10(ratio)) < 0.1, (meta.summary.estimated_attenuation, cpu.summary.estimated_attenuation)


def test_configured_targets_are_expressions_too(tmp_path):
    import shutil

    shutil.copy(FILES / "config_dataclass.py", tmp_path / "gpt.py")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gradlint]\nmodels = ["gpt.py::GPT(GPTConfig(n_layer=1, vocab_size=50))"]\n')
    code, out, err = cli("--format", "json", cwd=tmp_path)
    [m] = json.loads(out)["models"]
    assert m["status"] == "analyzed" and m["target"].endswith("gpt.py::GPT(GPTConfig(n_layer=1, vocab_size=50))"), err
    code, out, err = cli("gpt.py", "--format", "json", cwd=tmp_path)  # the configured target replaces the guess
    assert [m["target"] for m in json.loads(out)["models"]] == ["gpt.py::GPT(GPTConfig(n_layer=1, vocab_size=50))"]


def test_a_script_failing_at_import_still_has_its_models_analysed():
    report = analyze_path(FILES / "script_loads_data.py", select=["ALL"])
    analysed = [m for m in report.models if m.status == "analyzed"]
    assert [m.target.split("::")[1] for m in analysed] == ["Generator", "Discriminator"]
    [failed] = [m for m in report.models if m.status == "failed"]
    assert failed.error["stage"] == "import" and "FileNotFoundError" in failed.error["message"]
    assert "models defined before that line are analysed" in failed.error["message"]
    assert failed.findings[0].location.line == 30  # the torch.load line


def test_a_recurrent_state_input_is_left_to_start_at_zero():
    found = analyzed(analyze_path(FILES / "rnn_with_state.py"))
    m = found["RNNModel"]
    assert [ly.type for ly in m.layers] == ["Embedding", "LSTM", "Linear"] and m.summary.verdict == "healthy"


def test_the_files_own_config_instance_is_used_over_the_class_defaults(tmp_path):
    """``config = GPTConfig(n_layer=1)`` at module level is the configuration the file means (an HF
    BertConfig(num_hidden_layers=4) beside a classifier taking it): GPT(config), not GPT(GPTConfig())."""
    source = (FILES / "config_dataclass.py").read_text(encoding="utf-8")
    path = tmp_path / "with_instance.py"
    path.write_text(source + "\n\nconfig = GPTConfig(n_layer=1)\n", encoding="utf-8")
    found = analyzed(analyze_path(path))
    default = analyzed(analyze_path(FILES / "config_dataclass.py"))
    assert list(found) == ["GPT(config)"]
    assert len(found["GPT(config)"].layers) == len(default["GPT(GPTConfig())"].layers) - 4


def test_importing_a_model_file_writes_no_bytecode_into_the_repository(tmp_path):
    """Python writes __pycache__ next to every module it imports; gradlint's import of the user's
    file and of the helpers it imports must not (a pre-commit hook would fail on the new files)."""
    import os
    import subprocess
    import sys

    (tmp_path / "helpers.py").write_text("import torch.nn as nn\n\n\ndef block():\n    return nn.Linear(8, 8)\n")
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\nfrom helpers import block\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.a = block()\n        self.b = nn.Linear(8, 2)\n\n"
        "    def forward(self, x):\n        return self.b(self.a(x).relu())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["GRADLINT_NO_CACHE"] = "1"
    proc = subprocess.run([sys.executable, "-m", "gradlint", "net.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 model analyzed" in proc.stdout
    assert not list(tmp_path.rglob("__pycache__")), sorted(map(str, tmp_path.rglob("*")))


def test_the_source_scan_keeps_the_parser_s_line_numbers():
    """A form feed (old code puts one between sections) or a \\u2028 in a comment is a line break
    to str.splitlines but not to Python: the calls' text and lines must still be the written ones."""
    from gradlint.load.source_scan import scan_source

    calls = scan_source("x = 1\x0c\n# a \u2028 b\r\ny = Net(1,\r 2)  # two lines\nz = Net(3)\n").calls
    assert [(c.text, c.line) for c in calls] == [("Net(1, 2)", 3), ("Net(3)", 5)]
