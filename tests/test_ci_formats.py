"""--format github (Actions workflow commands), --format sarif (code scanning), --statistics and
`gradlint rule --all --format json`."""

from __future__ import annotations

import copy
import io
import json

import pytest
from click.testing import CliRunner
from conftest import ROOT, SHARED, run_gradlint

from gradlint.ir.source import Location
from gradlint.pipeline.records import ModelReport, Report
from gradlint.report.github import (
    annotation,
    escape_data,
    escape_property,
    render_github,
)
from gradlint.report.sarif import sarif_log
from gradlint.report.statistics import render_statistics, statistics
from gradlint.rules import all_rules
from gradlint.rules.finding import Finding

EXAMPLE = ROOT / "examples" / "deep_sigmoid_mlp.py"
SCHEMA = SHARED / "data" / "sarif-schema-2.1.0.json"


def sarif_validator():
    import jsonschema

    if not SCHEMA.is_file():
        pytest.fail(f"the official SARIF schema is expected at {SCHEMA} (../shared/data beside the repository)")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)  # the draft the schema declares (draft-04)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def check_sarif(log: dict) -> None:
    """The schema, plus what the schema cannot say and GitHub relies on."""
    errors = sorted(sarif_validator().iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(all_rules())
    for r in rules:
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"] and r["help"]["text"]
        assert r["help"]["markdown"].startswith(f"# {r['id']} ")
        assert r["helpUri"].endswith(f"/rules/{r['id']}.md") and (ROOT / "rules" / f"{r['id']}.md").is_file()
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
    for res in run["results"]:
        assert res["ruleId"] in {r["id"] for r in rules}
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["message"]["text"]
        [loc] = res["locations"]
        art = loc["physicalLocation"]["artifactLocation"]
        region = loc["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        if "uriBaseId" in art:
            assert art["uriBaseId"] in run["originalUriBaseIds"]
            assert not art["uri"].startswith("/") and ":" not in art["uri"]


@pytest.fixture(scope="module")
def example_report():
    from helpers import analyze_path

    return analyze_path(EXAMPLE)


# -- github --------------------------------------------------------------------------------------
def test_escaping_follows_actions_toolkit():
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("C:\\x,y%\n") == "C%3A\\x%2Cy%25%0A"


def test_annotation_shape_and_severity():
    f = Finding("GL101", "deep-saturating-chain", "error", "19 sigmoids, 100% saturated", "use ReLU")
    assert annotation(f, "models/a,b.py", 14, 20) == (
        "::error file=models/a%2Cb.py,line=14,col=20,title=GL101 deep-saturating-chain"
        "::19 sigmoids, 100%25 saturated%0AFix: use ReLU")
    assert annotation(Finding("GL102", "x", "warning", "m"), "p.py", 1, 1).startswith("::warning file=p.py,")
    assert annotation(Finding("GL900", "x", "info", "m"), "p.py", 1, 1).startswith("::notice file=p.py,")


def test_github_paths_are_relative_to_the_repository_root(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / "src" / "models").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src")  # gradlint reports paths relative to the working directory
    m = ModelReport("models/net.py::Net", path="models/net.py",
                    findings=[Finding("GL101", "deep-saturating-chain", "error", "m", "", Location("models/net.py", 3, 5))])
    out = io.StringIO()
    render_github(Report([m]), out)
    first, summary = out.getvalue().splitlines()
    assert first.startswith("::error file=src/models/net.py,line=3,col=5,title=GL101 deep-saturating-chain::m")
    assert summary.startswith("Found 1 problem")


def test_repo_root_is_found_from_a_git_file_too(tmp_path):
    from gradlint.report.locations import relative_to_root, repo_root

    (tmp_path / "wt" / "pkg").mkdir(parents=True)
    (tmp_path / "wt" / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n")  # worktrees, submodules
    root = repo_root(tmp_path / "wt" / "pkg")
    assert root == (tmp_path / "wt").resolve()
    assert relative_to_root(str(tmp_path / "wt" / "pkg" / "m.py"), root) == "pkg/m.py"
    assert relative_to_root(str(tmp_path / "other.py"), root) is None
    (tmp_path / "plain").mkdir()
    assert repo_root(tmp_path / "plain") == (tmp_path / "plain").resolve()  # no repository: the folder itself


# -- sarif ---------------------------------------------------------------------------------------
def test_sarif_of_the_example_is_valid(example_report, monkeypatch):
    monkeypatch.chdir(ROOT)
    log = sarif_log(example_report)
    check_sarif(log)
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"GL101", "GL102", "GL103", "GL104", "GL201", "GL205"}
    gl101 = next(r for r in results if r["ruleId"] == "GL101")
    assert gl101["level"] == "error"
    loc = gl101["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "examples/deep_sigmoid_mlp.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == next(
        i for i, t in enumerate(EXAMPLE.read_text().splitlines(), 1) if "nn.Sigmoid()" in t)


def test_the_schema_check_catches_a_broken_log(example_report, monkeypatch):
    monkeypatch.chdir(ROOT)
    log = sarif_log(example_report)
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    with pytest.raises(AssertionError):
        check_sarif(broken)
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError):
        check_sarif(broken)


def test_sarif_columns_uris_and_files_outside_the_repository(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "my models").mkdir()
    src = repo / "my models" / "net.py"
    src.write_text("import torch.nn as nn\nself.größe = nn.Sigmoid()\n", encoding="utf-8")
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    monkeypatch.chdir(repo)
    line = "self.größe = nn.Sigmoid()"
    byte_col = len(line[: line.index("nn.")].encode()) + 1
    findings = [Finding("GL101", "deep-saturating-chain", "error", "m", "fix", Location("my models/net.py", 2, byte_col)),
                Finding("GL001", "analysis-failed", "error", "m", "", Location(str(outside), 1, 1)),
                Finding("GL102", "missing-normalization", "info", "m", "", None)]
    log = sarif_log(Report([ModelReport("my models/net.py::Net", path="my models/net.py", findings=findings)]))
    check_sarif(log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.resolve().as_uri() + "/"
    r0, r1, r2 = run["results"]
    loc = r0["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "my%20models/net.py"
    assert loc["region"]["startColumn"] == line.index("nn.") + 1  # UTF-16 units, not bytes
    assert r1["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": outside.resolve().as_uri()}
    assert r2["level"] == "note" and r2["locations"][0]["physicalLocation"]["region"]["startLine"] == 1


# -- statistics and rule listing -------------------------------------------------------------------
def test_statistics_counts_per_code_most_frequent_first():
    f = lambda code: Finding(code, code.lower(), "warning", "m")  # noqa: E731
    report = Report([ModelReport("a", findings=[f("GL102"), f("GL101"), f("GL102")]), ModelReport("b", findings=[f("GL102")])])
    assert statistics(report) == [{"code": "GL102", "name": "gl102", "count": 3}, {"code": "GL101", "name": "gl101", "count": 1}]
    out = io.StringIO()
    render_statistics(report, out)
    assert out.getvalue().splitlines()[:2] == ["3\tGL102\tgl102", "1\tGL101\tgl101"]


@pytest.mark.parametrize("argv", [["--statistics"], ["check", "--statistics"]])
def test_statistics_from_the_cli(argv):
    from gradlint.cli import main

    result = CliRunner().invoke(main, [*argv, str(EXAMPLE)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "1\tGL101\tdeep-saturating-chain" in lines and len(lines) == 7
    assert not any(ln.startswith(str(EXAMPLE)) for ln in lines)  # counts instead of the findings
    result = CliRunner().invoke(main, [*argv, "--format", "json", str(EXAMPLE)])
    rows = json.loads(result.stdout)
    assert {r["code"]: r["count"] for r in rows} == {"GL101": 1, "GL102": 1, "GL103": 1, "GL104": 1, "GL201": 1, "GL205": 1}


def test_rule_all_json_lists_every_rule_with_its_docs():
    code, out, err = run_gradlint("rule", "--all", "--format", "json")
    assert code == 0, err
    rules = json.loads(out)
    assert [r["code"] for r in rules] == list(all_rules())
    for r in rules:
        cls = all_rules()[r["code"]]
        assert r["name"] == cls.name and r["severity"] == cls.severity and r["summary"] == cls.summary
        assert r["url"] == cls.doc_url() and r["explanation"] == cls.doc_markdown()
        assert {"what", "why", "fix", "references", "options", "enabled_by_default"} <= set(r)
    code, out, _ = run_gradlint("rule", "GL101", "--format", "json")
    assert code == 0 and json.loads(out)["code"] == "GL101"
