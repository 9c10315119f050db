"""Broken and hostile input: a one-line message, a defined exit code, and the other targets still
reported. Runs the real CLI in a subprocess where the process itself is under test."""

from __future__ import annotations

import json
import time

from conftest import run_gradlint

GOOD = """
import torch.nn as nn


class Good(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


def models_of(out: str) -> dict:
    return {m["target"].rsplit("/", 1)[-1]: m for m in json.loads(out)["models"]}


def test_constructor_that_never_returns_hits_the_timeout(write, tmp_path):
    write("slow.py", """
        import torch.nn as nn


        class Forever(nn.Module):
            def __init__(self):
                super().__init__()
                while True:
                    pass

            def forward(self, x):
                return x
        """)
    write("good.py", GOOD)
    start = time.monotonic()
    code, out, err = run_gradlint(str(tmp_path / "slow.py"), str(tmp_path / "good.py"), "--timeout", "2",
                                  "--format", "json", cwd=tmp_path)
    assert time.monotonic() - start < 60
    models = models_of(out)
    slow = models["slow.py::Forever"]
    assert slow["status"] == "failed" and slow["error"]["stage"] == "build"
    assert "did not finish within 2 s" in slow["error"]["message"]
    assert models["good.py::Good"]["status"] == "analyzed"
    assert code == 1 and "Traceback" not in err


def test_import_side_effects_do_not_corrupt_json(write, tmp_path):
    write("noisy.py", "print('hello from import')\n" + GOOD + "\nif __name__ == '__main__':\n    raise SystemExit(3)\n")
    code, out, err = run_gradlint("noisy.py", "--format", "json", cwd=tmp_path)
    assert code == 0 and "hello from import" in err
    assert models_of(out)["noisy.py::Good"]["status"] == "analyzed"


def test_sys_exit_at_import(write, tmp_path):
    write("exits.py", "import sys\nsys.exit(4)\n")
    code, out, err = run_gradlint("exits.py", "--format", "json", cwd=tmp_path)
    m = models_of(out)["exits.py"]
    assert code == 1 and m["error"]["stage"] == "import" and "sys.exit(4)" in m["error"]["message"]


def test_non_utf8_and_empty_files(tmp_path):
    (tmp_path / "latin1.py").write_bytes(b'import torch\nNAME = "caf\xe9"\n')
    (tmp_path / "empty.py").write_bytes(b"")
    (tmp_path / "good.py").write_text(GOOD)
    code, out, err = run_gradlint("latin1.py", "empty.py", "good.py", "--format", "json", cwd=tmp_path)
    models = models_of(out)
    assert models["latin1.py"]["error"]["stage"] == "import"
    assert "utf-8" in models["latin1.py"]["error"]["message"].lower()
    assert models["good.py::Good"]["status"] == "analyzed"
    assert "empty.py: no models found" in err
    assert code == 1 and "Traceback" not in err


def test_target_that_is_not_a_model(write, tmp_path):
    write("m.py", GOOD + "\nWIDTH = 4\n\n\ndef not_a_model():\n    return 42\n")
    code, out, _ = run_gradlint("m.py::WIDTH", "m.py::not_a_model", "--format", "json", cwd=tmp_path)
    models = models_of(out)
    assert "not an nn.Module class or a factory" in models["m.py::WIDTH"]["error"]["message"]
    assert "returned int, not an nn.Module" in models["m.py::not_a_model"]["error"]["message"]
    assert code == 1


def test_folder_with_thousands_of_files(tmp_path):
    pkg = tmp_path / "big"
    for i in range(3000):
        sub = pkg / f"d{i % 30}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.py").write_text(f"VALUE_{i} = {i}\n")
    (pkg / "d0" / "model.py").write_text(GOOD)
    start = time.monotonic()
    code, out, err = run_gradlint(str(pkg), "--format", "json", cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert code == 0, err
    assert list(models_of(out)) == ["model.py::Good"]
    assert elapsed < 60


def test_parallel_jobs_give_the_serial_results(write, tmp_path):
    for i in range(3):
        write(f"m{i}.py", GOOD.replace("Linear(4, 4)", f"Linear(4, {4 + i})").replace("self.fc(x)", "self.fc(x)"))
    write("bad.py", "import torch.nn as nn\nclass Bad(nn.Module:\n    pass\n")
    serial = run_gradlint(".", "--format", "json", cwd=tmp_path)
    parallel = run_gradlint(".", "--format", "json", "--jobs", "2", cwd=tmp_path)
    assert serial[0] == parallel[0] == 1
    assert json.loads(serial[1]) == json.loads(parallel[1])
