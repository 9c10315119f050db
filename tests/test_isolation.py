"""A hostile model file can never hide the other results, hang the run or corrupt its output.

One real file per case, each run by the real CLI in a subprocess next to a known-bad model
(``bad.py``, six sigmoid layers in a row: GL101 among others) whose finding must still be printed, with exit
code 1. Each file is analysed in a worker process of its own (gradlint/pipeline/workers.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import run_gradlint

BAD = """
import torch.nn as nn


class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(8, 8), nn.Sigmoid())])

    def forward(self, x):
        return self.net(x)
"""

NET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


def models_of(out: str) -> dict:
    return {m["target"].rsplit("/", 1)[-1]: m for m in json.loads(out)["models"]}


def lint_beside_bad(tmp_path: Path, name: str, source: str, *args: str, timeout: float = 300) -> tuple[int, dict, str]:
    """Run ``name`` (with ``source``) and bad.py; the bad model's GL101 must be there."""
    (tmp_path / name).write_text(source)
    (tmp_path / "bad.py").write_text(BAD)
    code, out, err = run_gradlint(name, "bad.py", "--format", "json", *args, cwd=tmp_path, timeout=timeout)
    models = models_of(out)
    assert "GL101" in [f["code"] for f in models["bad.py::Bad"]["findings"]], (out, err)
    assert code == 1, err
    assert "Traceback" not in err
    return code, models, err


def gl001(model: dict) -> str:
    (finding,) = [f for f in model["findings"] if f["code"] == "GL001"]
    return finding["message"]


def test_os_exit_at_import_is_a_finding_not_a_green_run(tmp_path):
    _, models, _ = lint_beside_bad(tmp_path, "exits.py", "import os\nimport torch.nn as nn\nos._exit(0)\n" + NET)
    m = models["exits.py"]
    assert m["status"] == "failed" and m["error"]["stage"] == "import"
    assert "os._exit(0)" in gl001(m) and "at import" in gl001(m)


def test_segfault_at_import(tmp_path):
    _, models, _ = lint_beside_bad(tmp_path, "segv.py", "import ctypes\nimport torch.nn as nn\nctypes.string_at(0)\n" + NET)
    assert "killed by SIGSEGV at import" in gl001(models["segv.py"])


def test_segfault_in_a_constructor_names_the_model(tmp_path):
    source = "import ctypes\nimport torch.nn as nn\n" + NET.replace("super().__init__()", "super().__init__()\n        ctypes.string_at(0)")
    _, models, _ = lint_beside_bad(tmp_path, "segv.py", source)
    m = models["segv.py::Net"]
    assert m["error"]["stage"] == "build" and "killed by SIGSEGV while building Net" in gl001(m)
    assert m["findings"][0]["location"]["line"] == 4  # the class definition


def test_non_daemon_thread_does_not_keep_gradlint_alive(tmp_path):
    source = "import threading, time\nimport torch.nn as nn\nthreading.Thread(target=time.sleep, args=(3600,)).start()\n" + NET
    start = time.monotonic()
    _, models, _ = lint_beside_bad(tmp_path, "threads.py", source, timeout=240)
    assert time.monotonic() - start < 200
    assert models["threads.py::Net"]["status"] == "analyzed"


def test_loop_that_swallows_base_exception_is_killed(tmp_path):
    source = "import torch.nn as nn\n" + NET.replace("super().__init__()", """super().__init__()
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass""")
    start = time.monotonic()
    _, models, _ = lint_beside_bad(tmp_path, "swallow.py", source, "--timeout", "8")
    assert time.monotonic() - start < 120
    message = gl001(models["swallow.py::Net"])
    assert "did not finish within 8 s while building Net" in message and "did not stop" in message


def test_state_changes_at_import_do_not_leak_into_the_next_file(tmp_path):
    # Sorted before bad.py; in one process these would turn bad.py's sigmoids into ReLUs and
    # break its relative paths.
    source = ("import os, sys\nimport torch.nn as nn\nos.chdir('/')\nsys.path.insert(0, '/nonexistent')\n"
              "nn.Sigmoid = nn.ReLU\n" + NET)
    _, models, _ = lint_beside_bad(tmp_path, "a_chdir.py", source)
    assert models["a_chdir.py::Net"]["status"] == "analyzed"
    assert models["bad.py::Bad"]["findings"][0]["location"]["path"] == "bad.py"


def test_lazy_modules_are_materialized_or_fail_alone(tmp_path):
    source = """
import torch
import torch.nn as nn


class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.LazyLinear(8)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(torch.relu(self.fc(x)))


def example_inputs():
    return (torch.randn(4, 16),)
"""
    _, models, _ = lint_beside_bad(tmp_path, "lazy.py", source)
    m = models["lazy.py::Lazy"]
    assert m["status"] == "analyzed" and [layer["module"] for layer in m["layers"]] == ["fc", "out"]

    no_inputs = source.split("\n\ndef example_inputs")[0]
    _, models, _ = lint_beside_bad(tmp_path, "lazy.py", no_inputs)
    m = models["lazy.py::Lazy"]
    assert m["error"]["stage"] == "build" and "lazy modules" in gl001(m)


ECHO = """
import os
import subprocess

import torch.nn as nn

os.system("echo hi from os.system")
subprocess.run(["echo", "hi from subprocess"])
""" + NET.replace("super().__init__()", "super().__init__()\n        os.system('echo hi from the constructor')")


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_fd_level_writes_do_not_corrupt_machine_readable_output(tmp_path, fmt):
    (tmp_path / "echo.py").write_text(ECHO)
    (tmp_path / "bad.py").write_text(BAD)
    code, out, err = run_gradlint("echo.py", "bad.py", "--format", fmt, cwd=tmp_path)
    assert code == 1, err
    data = json.loads(out)  # nothing else on stdout
    for text in ("hi from os.system", "hi from subprocess", "hi from the constructor"):
        assert text in err and text not in out
    if fmt == "json":
        assert "GL101" in [f["code"] for f in models_of(out)["bad.py::Bad"]["findings"]]
    else:
        from test_ci_formats import check_sarif  # the official schema, from ../shared/data

        check_sarif(data)
        assert "GL101" in [r["ruleId"] for r in data["runs"][0]["results"]]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_in_a_folder_is_skipped_not_read(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    os.mkfifo(folder / "pipe.py")
    (folder / "bad.py").write_text(BAD)
    code, out, err = run_gradlint("models", "--format", "json", cwd=tmp_path, timeout=240)
    assert code == 1 and list(models_of(out)) == ["bad.py::Bad"]
    assert "skipped models/pipe.py: not a regular file but a FIFO" in err
    # named on the command line, it is a usage error
    code, _, err = run_gradlint("models/pipe.py", cwd=tmp_path, timeout=240)
    assert code == 2 and "models/pipe.py: not a regular file but a FIFO" in err


def test_symlink_loops_and_dangling_links_are_skipped(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "loop_a.py").symlink_to("loop_b.py")
    (folder / "loop_b.py").symlink_to("loop_a.py")
    (folder / "gone.py").symlink_to("removed.py")
    (folder / "bad.py").write_text(BAD)
    code, out, err = run_gradlint("models", "--format", "json", cwd=tmp_path)
    assert code == 1 and list(models_of(out)) == ["bad.py::Bad"]
    assert "skipped models/loop_a.py: a symbolic link loop" in err
    assert "skipped models/gone.py: a symbolic link to removed.py, which does not exist" in err
    assert "Traceback" not in err and "internal error" not in err


def test_memory_cap(tmp_path):
    source = "import torch\nimport torch.nn as nn\nBIG = torch.ones(1 << 30)  # 4 GiB\n" + NET
    _, models, _ = lint_beside_bad(tmp_path, "hog.py", source, "--memory-limit", "2GiB")
    m = models["hog.py"]
    assert m["error"]["stage"] == "import" and "over the 2 GiB memory cap" in gl001(m)


def test_parallel_workers_give_the_serial_report(tmp_path):
    (tmp_path / "a_exit.py").write_text("import os\nimport torch\nos._exit(3)\n")
    (tmp_path / "b_segv.py").write_text("import ctypes\nimport torch\nctypes.string_at(0)\n")
    (tmp_path / "c_noisy.py").write_text("import os\nimport torch.nn as nn\nos.system('echo noise')\n" + NET)
    (tmp_path / "bad.py").write_text(BAD)
    serial = run_gradlint(".", "--format", "json", cwd=tmp_path)
    parallel = run_gradlint(".", "--format", "json", "--jobs", "3", cwd=tmp_path)
    assert serial[0] == parallel[0] == 1
    assert json.loads(serial[1]) == json.loads(parallel[1])
    assert list(models_of(serial[1])) == ["a_exit.py", "b_segv.py", "bad.py::Bad", "c_noisy.py::Net"]
    assert "os._exit(3)" in gl001(models_of(serial[1])["a_exit.py"])


SPAWNED = """
import json, sys
from gradlint.config import Config
from gradlint.pipeline import run, workers
from gradlint.rules import select_rules

workers.needs_spawn = lambda config: True  # what --verify on CUDA does, here on the CPU
report, session = run.run(sys.argv[1:], Config(), select_rules(None, [], []), isolate=True)
print(json.dumps({"json": report.to_json(), "internal": session.internal_errors}))
"""


def test_spawned_workers_report_what_forked_ones_do(tmp_path):
    """The CUDA path: each worker a fresh interpreter, same protocol, same report."""
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "a_exit.py").write_text("import os\nimport torch\nos._exit(3)\n")
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "c_echo.py").write_text(ECHO)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    files = ["a_exit.py", "bad.py", "c_echo.py"]
    proc = subprocess.run([sys.executable, "-c", SPAWNED, *files], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    spawned = json.loads(proc.stdout.strip().splitlines()[-1])
    assert spawned["internal"] == []
    _, forked, _ = run_gradlint(*files, "--format", "json", cwd=tmp_path)
    assert spawned["json"]["models"] == json.loads(forked)["models"]
    assert "hi from os.system" in proc.stderr
