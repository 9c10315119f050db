"""The rule registry: every rule class, by code, and rule selection (select/ignore/prefixes/ALL).

Importing this package imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Iterable

from ..config import ConfigError
from .base import Example, Option, Rule, RuleContext

# One module per rule, listed explicitly so the order (and the docs) are stable.
_RULE_MODULES = (
    "gl001_analysis_failed",
    "gl101_deep_saturating_chain",
    "gl102_missing_normalization",
    "gl103_no_skip_connections",
    "gl104_default_initialization",
)

_RULES: dict[str, type[Rule]] | None = None


def all_rules() -> dict[str, type[Rule]]:
    """code -> rule class, sorted by code."""
    global _RULES
    if _RULES is None:
        found: dict[str, type[Rule]] = {}
        for mod_name in _RULE_MODULES + tuple(_extra_modules()):
            mod = importlib.import_module(f"{__name__}.{mod_name}")
            for obj in vars(mod).values():
                if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.__module__ == mod.__name__:
                    if obj.code in found:
                        raise RuntimeError(f"duplicate rule code {obj.code}: {found[obj.code].__name__} and {obj.__name__}")
                    found[obj.code] = obj
        _RULES = dict(sorted(found.items()))
    return _RULES


def _extra_modules() -> list[str]:
    """Rule modules of later families (GL2xx estimate, GL3xx verify), found by file name."""
    from pathlib import Path

    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("gl[0-9][0-9][0-9]_*.py") if p.stem not in _RULE_MODULES)


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


__all__ = ["Example", "Option", "Rule", "RuleContext", "all_rules", "get_rule", "select_rules", "expand_selectors"]
