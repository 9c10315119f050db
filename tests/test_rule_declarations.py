"""Rules check their own declaration when the class is created, and their options when configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradlint.config import ConfigError
from gradlint.rules import all_rules, check_rule_options, needs_verify
from gradlint.rules.base import Example, Option, Rule, RuleDeclarationError


def _declare(**overrides):
    body = dict(code="GL999", name="made-up-rule", severity="warning", summary="s", what="w", why="y", fix="f",
                INVALID=[Example("x = 1\n", line=1)])
    body.update(overrides)
    return type("MadeUp", (Rule,), body)


def test_a_well_declared_rule_is_accepted():
    assert _declare().code == "GL999"


@pytest.mark.parametrize("overrides, complaint", [
    ({"code": "G101"}, "code 'G101'"),
    ({"name": "MadeUp"}, "kebab-case"),
    ({"severity": "fatal"}, "severity 'fatal'"),
    ({"requires": "gpu"}, "requires 'gpu'"),
    ({"why": "  "}, "why is empty"),
    ({"INVALID": []}, "no INVALID example"),
    ({"options": {"depth": Option(int, "ten", "d")}}, "option 'depth': the default does not fit"),
    ({"options": {"depth": Option(int, 0, "d", min=1)}}, "option 'depth': the default does not fit"),
    ({"options": {"depth": 3}}, "option 'depth' is not an Option"),
])
def test_a_broken_declaration_fails_at_class_creation(overrides, complaint):
    with pytest.raises(RuleDeclarationError, match="made_up|MadeUp") as e:
        _declare(**overrides)
    assert complaint in str(e.value)


def test_every_rule_file_is_discovered_by_its_name():
    files = sorted(p.stem[:5].upper() for p in (Path(__file__).parents[1] / "gradlint" / "rules").glob("gl[0-9][0-9][0-9]_*.py"))
    assert sorted(all_rules()) == files


@pytest.mark.parametrize("table, message", [
    ({"GL101": {"min-chain": "three"}}, "min-chain: expected an integer >= 1, got str 'three'"),
    ({"GL101": {"min-chain": True}}, "min-chain: expected an integer >= 1, got bool True"),
    ({"GL101": {"min-chain": 0}}, "min-chain: expected an integer >= 1, got 0"),
    ({"GL304": {"fraction": 1.5}}, "fraction: expected a number from 0 to 1, got 1.5"),
    ({"GL101": {"min-chian": 3}}, "unknown option (did you mean 'min-chain'?)"),
    ({"GL203": {"depth": 3}}, "unknown option (GL203 has no options)"),
    ({"deep-saturating-chian": {"min-chain": 3}}, "unknown rule (did you mean 'deep-saturating-chain'?)"),
    ({"GL1O1": {"min-chain": 3}}, "unknown rule (did you mean 'GL101'?)"),
])
def test_bad_rule_options_are_configuration_errors(table, message):
    with pytest.raises(ConfigError) as e:
        check_rule_options(table, "pyproject.toml")
    assert str(e.value).startswith("pyproject.toml: [tool.gradlint.rules.")
    assert message in str(e.value)


def test_good_rule_options_pass_by_code_and_by_name():
    check_rule_options({"GL101": {"min-chain": 3}, "dead-units": {"fraction": 0.8}, "GL303": {"threshold": 4}})
    rule = all_rules()["GL303"]({"threshold": 4})
    assert rule.opts["threshold"] == 4.0 and isinstance(rule.opts["threshold"], float)


def test_measured_rules_need_verify():
    assert needs_verify(["GL3"]) == ["GL301", "GL302", "GL303", "GL304", "GL305", "GL306", "GL307"]
    assert needs_verify(["GL1", "GL201"]) == []


def test_cli_says_a_selected_rule_cannot_run_and_rejects_bad_options(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gradlint.cli import main

    model = Path(__file__).parents[1] / "examples" / "resnet_small.py"
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [str(model), "--select", "GL3,GL101", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "GL301, GL302, GL303, GL304, GL305, GL306, GL307 measure one batch and run only with --verify" in result.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint.rules.GL101]\nmin-chain = "three"\n')
    result = CliRunner().invoke(main, [str(model), "--no-cache", "--config", str(tmp_path / "pyproject.toml")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"gradlint: error: {tmp_path / 'pyproject.toml'}: [tool.gradlint.rules.GL101] min-chain: "
        "expected an integer >= 1, got str 'three'"]
