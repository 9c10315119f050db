"""The README's CI job and editor setup, run as written: the GitHub Actions job's gradlint steps on
the example models in a fresh git repository, and the VS Code task with its problem matcher."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import ROOT
from test_ci_formats import check_sarif

yaml = pytest.importorskip("yaml")

README = (ROOT / "README.md").read_text(encoding="utf-8")
CONCISE = r"^(.+?):(\d+):(\d+): ([A-Z]+\d+) (.*)$"  # the shape conventions.md promises to editors and CI


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert m, f"README has no section '## {title}'"
    return m.group(1)


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


@pytest.fixture
def shell_env(tmp_path):
    """A PATH whose `gradlint` is this checkout (the job's `pip install` steps are skipped)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "gradlint"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gradlint "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = str(bin_dir) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def parse_annotation(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command, unescaped as the Actions runner does."""
    m = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert m, line

    def unescape(s: str) -> str:
        return s.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")

    props = dict(p.split("=", 1) for p in m.group(2).split(","))
    return m.group(1), {k: unescape(v) for k, v in props.items()}, unescape(m.group(3))


def test_github_actions_job_from_the_readme(tmp_path, shell_env):
    [block] = code_blocks(section("CI: GitHub Actions"), "yaml")
    workflow = yaml.safe_load(block)
    [job] = workflow["jobs"].values()
    assert job["permissions"]["security-events"] == "write"
    steps = job["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    installs = [r for r in runs if r.startswith("pip install")]
    assert any("torch" in r and "download.pytorch.org/whl/cpu" in r for r in installs)
    assert any("gradlint" in r for r in installs if "torch" not in r)
    commands = [r for r in runs if r not in installs]
    assert commands and all(c.startswith("gradlint ") for c in commands), commands
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    sarif_name = upload["with"]["sarif_file"]

    # A repository like the user's: the example models under models/.
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    for example in (ROOT / "examples").glob("*.py"):
        shutil.copy(example, repo / "models" / example.name)
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    else:
        (repo / ".git").mkdir()

    results = []
    for cmd in commands:  # as GitHub's `shell: bash` runs a step
        p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", cmd], cwd=repo, env=shell_env,
                           capture_output=True, text=True, timeout=300)
        results.append((cmd, p))

    # The annotation step: fails the job on findings, one workflow command per finding.
    cmd, p = next((c, p) for c, p in results if "--format github" in c)
    assert p.returncode == 1, p.stderr
    annotations = [parse_annotation(ln) for ln in p.stdout.splitlines() if ln.startswith("::")]
    source = (repo / "models" / "deep_sigmoid_mlp.py").read_text().splitlines()
    sig_line = next(i for i, t in enumerate(source, 1) if "nn.Sigmoid()" in t)
    by_title = {props["title"]: (kind, props, msg) for kind, props, msg in annotations}
    kind, props, msg = by_title["GL101 deep-saturating-chain"]
    assert kind == "error" and props["file"] == "models/deep_sigmoid_mlp.py"
    assert props["line"] == str(sig_line) and props["col"] == str(source[sig_line - 1].index("nn.Sigmoid()") + 1)
    assert "sigmoid" in msg and "\nFix: " in msg
    assert {t.split()[0] for t in by_title} == {"GL101", "GL102", "GL103", "GL104", "GL201", "GL205"}
    # GL101 and GL201 are errors (annotated ::error), the structural rules warnings.
    assert {t.split()[0]: k for t, (k, _, _) in by_title.items()} == {
        "GL101": "error", "GL102": "warning", "GL103": "warning", "GL104": "warning", "GL201": "error",
        "GL205": "warning"}

    # The SARIF step: succeeds, writes the file the upload step sends.
    cmd, p = next((c, p) for c, p in results if "--format sarif" in c)
    assert p.returncode == 0, p.stderr
    log = json.loads((repo / sarif_name).read_text())
    check_sarif(log)
    run = log["runs"][0]
    gl101 = next(r for r in run["results"] if r["ruleId"] == "GL101")
    loc = gl101["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "models/deep_sigmoid_mlp.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == sig_line
    assert unquote(run["originalUriBaseIds"]["%SRCROOT%"]["uri"]) == repo.resolve().as_uri() + "/"


def test_vscode_task_problem_matcher_reads_the_output(shell_env):
    blocks = [json.loads(b) for b in code_blocks(section("Editors"), "json")]
    [task] = [t for b in blocks for t in b.get("tasks", []) if t["label"] == "gradlint"]
    matcher = task["problemMatcher"]
    pattern = matcher["pattern"]
    assert pattern["regexp"] == CONCISE
    example = ROOT / "examples" / "deep_sigmoid_mlp.py"
    argv = [task["command"], *(a.replace("${file}", str(example)) for a in task["args"])]
    p = subprocess.run(argv, cwd=ROOT, env=shell_env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    problems = [re.match(pattern["regexp"], ln) for ln in lines]
    assert all(problems[:-1]) and problems[-1] is None, lines  # every finding matches, the summary line does not
    assert matcher["fileLocation"][0] == "autoDetect"  # relative to the workspace folder (the task's cwd) or absolute
    codes = set()
    for m in problems[:-1]:
        file = Path(m.group(pattern["file"]))
        assert (file if file.is_absolute() else ROOT / file).resolve() == example.resolve()
        assert int(m.group(pattern["line"])) >= 1 and int(m.group(pattern["column"])) >= 1
        codes.add(m.group(pattern["code"]))
    assert codes == {"GL101", "GL102", "GL103", "GL104", "GL201", "GL205"}


def test_neovim_snippet_starts_the_server_the_lsp_tests_run():
    pytest.importorskip("lsprotocol")
    from gradlint.lsp.server import Settings

    text = section("Editors")
    [lua] = code_blocks(text, "lua")
    assert "vim.lsp.start(" in lua and 'cmd = { "gradlint", "lsp" }' in lua
    options = dict(re.findall(r"(\w+) = ([^,}]+)", re.search(r"init_options = \{(.*?)\}", lua).group(1)))
    assert set(options) <= {"interpreter", "timeout", "args"}
    # Every documented setting is one the server reads.
    documented = re.findall(r"^\| `(\w+)` \|", text, re.M)
    assert documented == ["interpreter", "timeout", "args", "analyzeOn", "memoryLimit"]
    assert Settings().update({"interpreter": "/x/python", "timeout": 60, "args": ["--select", "GL1"],
                              "analyzeOn": "open", "memoryLimit": "4GiB"}) == []
