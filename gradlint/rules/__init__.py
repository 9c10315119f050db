"""The rule registry: every rule class, by code, and rule selection (select/ignore/prefixes/ALL).

Importing this package imports no torch.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any, Iterable

from ..config import ConfigError
from .base import Example, Option, Rule, RuleContext

_RULES: dict[str, type[Rule]] | None = None


def _rule_modules() -> list[str]:
    """Every ``glNNN_kebab_name.py`` in this package: one rule each, found by file name."""
    return sorted(p.stem for p in Path(__file__).parent.glob("gl[0-9][0-9][0-9]_*.py"))


def all_rules() -> dict[str, type[Rule]]:
    """code -> rule class, sorted by code."""
    global _RULES
    if _RULES is None:
        found: dict[str, type[Rule]] = {}
        for mod_name in _rule_modules():
            mod = importlib.import_module(f"{__name__}.{mod_name}")
            for obj in vars(mod).values():
                if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.__module__ == mod.__name__:
                    if obj.code in found:
                        raise RuntimeError(f"duplicate rule code {obj.code}: {found[obj.code].__name__} and {obj.__name__}")
                    found[obj.code] = obj
        _RULES = dict(sorted(found.items()))
    return _RULES


def get_rule(code_or_name: str) -> type[Rule] | None:
    rules = all_rules()
    key = code_or_name.strip()
    if key.upper() in rules:
        return rules[key.upper()]
    for r in rules.values():
        if r.name == key.lower():
            return r
    return None


def _expand(selector: str) -> set[str]:
    rules = all_rules()
    s = selector.strip()
    if s.upper() == "ALL":
        return set(rules)
    by_name = [c for c, r in rules.items() if r.name == s.lower()]
    if by_name:
        return set(by_name)
    matched = {c for c in rules if c.startswith(s.upper())}
    if not matched:
        raise ConfigError(f"unknown rule selector {selector!r}: use a code (GL101), a prefix (GL1), a rule name or ALL; "
                          "`gradlint rule --all` lists them")
    return matched


def expand_selectors(selectors: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for s in selectors:
        out |= _expand(s)
    return out


def select_rules(select: list[str] | None, extend_select: list[str], ignore: list[str]) -> set[str]:
    """Enabled codes: (select, or the default-enabled rules) + extend-select - ignore.

    A prefix selects only default-enabled rules unless it names the off-by-default family
    itself (``GL9``) or a rule exactly; ``ALL`` selects everything.
    """
    rules = all_rules()

    def chosen(selectors: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for s in selectors:
            codes = _expand(s)
            explicit = s.strip().upper() == "ALL" or len(codes) == 1 or all(not rules[c].default_enabled for c in codes)
            out |= codes if explicit else {c for c in codes if rules[c].default_enabled}
        return out

    base = chosen(select) if select is not None else {c for c, r in rules.items() if r.default_enabled}
    return (base | chosen(extend_select)) - expand_selectors(ignore)


def check_rule_options(rules: dict[str, dict[str, Any]], source: str | None = None) -> None:
    """Every ``[tool.gradlint.rules.X]`` table names a rule (code or name) and only its options,
    with values of the right type and range; else a ConfigError with a did-you-mean (naming
    ``source``, the pyproject.toml, when given)."""
    try:
        _check_rule_options(rules)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}" if source else str(e)) from None


def _check_rule_options(rules: dict[str, dict[str, Any]]) -> None:
    known = all_rules()
    for key, options in rules.items():
        rule = get_rule(key)
        if rule is None:
            names = list(known) + [r.name for r in known.values()]
            close = difflib.get_close_matches(key, names, n=1) or difflib.get_close_matches(key.upper(), names, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "`gradlint rule --all` lists the rules"
            raise ConfigError(f"[tool.gradlint.rules.{key}]: unknown rule ({hint})")
        for option, value in options.items():
            rule.parse_option(option, value)


def needs_verify(selectors: Iterable[str]) -> list[str]:
    """Codes the user selected by name or prefix that only run with ``--verify`` (GL3xx)."""
    return sorted(c for c in expand_selectors(selectors) if all_rules()[c].requires == "measurement")


__all__ = ["Example", "Option", "Rule", "RuleContext", "all_rules", "get_rule", "select_rules", "expand_selectors",
           "check_rule_options", "needs_verify"]
