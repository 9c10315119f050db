"""What a rule is: code, kebab-case name, severity, docs, options and runnable examples.

In the spirit of Fixit: the examples that document a rule are the examples its tests run, so docs
and tests cannot drift apart. Rule modules must not import torch at import time (``gradlint rule``
and ``--help`` stay fast); they read the IR and the analyses the pipeline hands them.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

from ..graph import Location
from ..report.model import Finding


@dataclass(frozen=True)
class Option:
    type: type
    default: Any
    doc: str


@dataclass(frozen=True)
class Example:
    """A whole model file. For INVALID examples, ``line`` is where the finding must point."""

    code: str
    line: int | None = None
    target: str | None = None  # "Name" or "Name(args)"; default: every model in the file
    note: str = ""
    verify: bool = False  # run with --verify (GL3xx)

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")


@dataclass
class RuleContext:
    """Everything a rule may read about one model."""

    graph: Any  # graph.LayerGraph
    structure: Any  # analysis.Structure
    options: dict[str, Any]
    init: Any = None  # initcheck.InitReport, when computed
    estimate: Any = None  # estimate.Estimate, when the estimator ran
    measurement: Any = None  # verify.Measurement, with --verify
    config: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str] = "warning"
    summary: ClassVar[str] = ""
    what: ClassVar[str] = ""
    why: ClassVar[str] = ""
    fix: ClassVar[str] = ""
    references: ClassVar[list[str]] = []
    options: ClassVar[dict[str, Option]] = {}
    VALID: ClassVar[list[Example]] = []
    INVALID: ClassVar[list[Example]] = []
    default_enabled: ClassVar[bool] = True
    requires: ClassVar[str] = "graph"  # graph | estimate | measurement

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.opts = {k: o.default for k, o in self.options.items()}
        if options:
            self.opts.update(options)

    def check(self, ctx: RuleContext) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def finding(self, message: str, location: Location | None, fix: str | None = None,
                severity: str | None = None) -> Finding:
        return Finding(self.code, self.name, severity or self.severity, message, fix if fix is not None else self.fix,
                       location)

    # -- documentation ------------------------------------------------------------------------
    @classmethod
    def doc_markdown(cls) -> str:
        """The rule's page, in ruff's shape: what / why / example / use instead / references."""
        lines = [f"# {cls.code} {cls.name}", ""]
        lines += [f"- **Code:** `{cls.code}`", f"- **Name:** `{cls.name}`", f"- **Severity:** {cls.severity}",
                  f"- **Enabled by default:** {'yes' if cls.default_enabled else 'no'}",
                  f"- **Needs:** {_NEEDS[cls.requires]}", ""]
        lines += [cls.summary, "", "## What it does", "", textwrap.dedent(cls.what).strip(), "",
                  "## Why is this bad?", "", textwrap.dedent(cls.why).strip(), ""]
        if cls.INVALID:
            ex = cls.INVALID[0]
            lines += ["## Example", ""]
            if ex.note:
                lines += [ex.note, ""]
            lines += ["```python", ex.source.rstrip(), "```", ""]
        if cls.VALID:
            ex = cls.VALID[0]
            lines += ["## Use instead", ""]
            if ex.note:
                lines += [ex.note, ""]
            lines += ["```python", ex.source.rstrip(), "```", ""]
        lines += ["## How to fix", "", textwrap.dedent(cls.fix).strip(), ""]
        if cls.options:
            lines += ["## Options", "", f"Set under `[tool.gradlint.rules.{cls.code}]` (or the rule's name) in pyproject.toml.", "",
                      "| option | type | default | meaning |", "|---|---|---|---|"]
            for k, o in cls.options.items():
                lines.append(f"| `{k}` | {o.type.__name__} | `{o.default!r}` | {o.doc} |")
            lines.append("")
        if cls.references:
            lines += ["## References", ""] + [f"- {r}" for r in cls.references] + [""]
        return "\n".join(lines)

    @classmethod
    def to_json(cls) -> dict[str, Any]:
        return {
            "code": cls.code, "name": cls.name, "severity": cls.severity, "summary": cls.summary,
            "enabled_by_default": cls.default_enabled, "requires": cls.requires,
            "what": textwrap.dedent(cls.what).strip(), "why": textwrap.dedent(cls.why).strip(),
            "fix": textwrap.dedent(cls.fix).strip(), "references": list(cls.references),
            "options": {k: {"type": o.type.__name__, "default": o.default, "doc": o.doc} for k, o in cls.options.items()},
            "explanation": cls.doc_markdown(),
        }


_NEEDS = {
    "graph": "the captured graph (static)",
    "estimate": "the gradient estimate (static)",
    "measurement": "`--verify` (one measured forward/backward pass)",
}
