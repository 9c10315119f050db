from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# Tests opt in to the results cache explicitly (tests/test_cache.py); everything else runs fresh.
os.environ.setdefault("GRADLINT_NO_CACHE", "1")


@pytest.fixture
def write(tmp_path):
    """write("name.py", source) -> Path, dedenting the source."""

    def _write(name: str, source: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return p

    return _write


def run_gradlint(*args: str, cwd: Path | str | None = None, env: dict | None = None, timeout: float = 300):
    """Run the real CLI in a subprocess: (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "gradlint", *args], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def gradlint_cli():
    return run_gradlint
