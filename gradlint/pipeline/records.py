"""The finished report: what every renderer (text, JSON, SARIF, LSP, plots) reads. No analysis here.

``to_json`` writes the JSON contract (README.md, "JSON output"); the other fields serve the terminal,
the plots and the tooling around them. Importing this module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..ir.source import Location
from ..ir.verdict import Thresholds
from ..rules.finding import Finding, Fix

if TYPE_CHECKING:
    from ..estimate.propagate import Estimate
    from ..ir.graph import LayerGraph
    from ..verify.measurement import Measurement


@dataclass
class LayerReport:
    module: str
    type: str
    location: Location | None
    estimate: dict[str, Any] | None = None  # {"grad_ratio", "bound", "act_rms", "grad_rms"}
    measured: dict[str, Any] | None = None  # only with --verify
    frozen: bool = False  # every weight has requires_grad=False: listed, not a weight layer, no numbers

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "module": self.module,
            "type": self.type,
            "location": self.location.to_json() if self.location else None,
            "estimate": self.estimate,
        }
        if self.frozen:
            out["frozen"] = True
        if self.measured is not None:
            out["measured"] = self.measured
        return out


@dataclass
class Summary:
    estimated_attenuation: float | None = None
    verdict: str | None = None
    measured_attenuation: float | None = None
    measured_verdict: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "estimated_attenuation": self.estimated_attenuation,
            "verdict": self.verdict,
            "measured_attenuation": self.measured_attenuation,
            "measured_verdict": self.measured_verdict,
        }


@dataclass
class ModelReport:
    target: str
    status: str = "analyzed"  # analyzed | failed | not-built (GL002: discovery could not build the class)
    error: dict[str, str] | None = None  # {"stage": ..., "message": ...}
    capture: str | None = None
    layers: list[LayerReport] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    findings: list[Finding] = field(default_factory=list)
    # Not in the JSON contract: for the terminal and the tooling around it.
    notes: list[str] = field(default_factory=list)
    path: str = ""  # the file this model came from
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    parameters: int | None = None  # parameters of the built model
    materialized: bool | None = None  # weights on the CPU (False: analysed on the meta device)
    input_source: str = ""  # where the example inputs came from
    depth: int | None = None  # weight layers on the longest input-to-output path
    shortest_depth: int | None = None  # ... on the shortest one (short when skip connections exist)
    thresholds: Thresholds = field(default_factory=Thresholds)  # what the verdicts used
    estimate: Estimate | None = None  # the estimate as plain data: causes, flow, assumptions
    measurement: Measurement | None = None  # --verify: the measured pass
    output_files: list[str] = field(default_factory=list)  # --plot / --tensorboard outputs
    project_files: list[str] = field(default_factory=list)  # user files the model's import used
    cached: bool = False  # served from the cache
    missing_module: str | None = None  # failed on importing a module that is not installed (never cached)
    # the captured graph: in-process only, never sent by a worker nor cached (pipeline/serialize.py)
    graph: LayerGraph | None = field(default=None, metadata={"in_process_only": True})
    depth_check: dict[str, Any] | None = None  # --verify --depth K: the truncated copy's agreement
    fixes: list[Fix] = field(default_factory=list)  # the advisor's ranked fixes for this model (best first)

    @property
    def weight_layers(self) -> list[LayerReport]:
        """The layers with numbers (frozen ones, listed in ``layers`` for the contract, left out)."""
        return [layer for layer in self.layers if not layer.frozen]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "status": self.status,
            "error": self.error,
            "capture": self.capture,
            "layers": [layer.to_json() for layer in self.layers],
            "summary": self.summary.to_json(),
            "findings": [f.to_json() for f in self.findings],
            **({"depth_check": self.depth_check} if self.depth_check is not None else {}),
        }


@dataclass
class FileResult:
    """What analysing one target file produced: what a worker sends back and the cache stores."""

    reports: list[ModelReport] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # one-line notes for stderr
    internal_errors: list[str] = field(default_factory=list)
    usage_errors: list[str] = field(default_factory=list)  # a target the file cannot satisfy (exit 2)
    project_files: list[str] = field(default_factory=list)  # user files the import pulled in
    opened_files: list[str] = field(default_factory=list)  # files under the project root user code opened
    environment: dict[str, str | None] = field(default_factory=dict)  # variables user code read, their values
    cacheable: bool = True  # False: never stored (a worker that died, a module that is not installed)


@dataclass
class Report:
    models: list[ModelReport] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # one-line notes for stderr (no models found...)
    usage_errors: list[str] = field(default_factory=list)  # bad targets: printed, and exit code 2
    run: dict[str, Any] | None = None  # under torchrun: {"world_size", "backend", "sharding", "weights"}

    @property
    def findings(self) -> list[Finding]:
        return [f for m in self.models for f in m.findings]

    @property
    def problems(self) -> list[Finding]:
        """Errors and warnings: what sets exit code 1 and is counted."""
        return [f for f in self.findings if f.is_problem]

    @property
    def notes(self) -> list[Finding]:
        """``info`` findings: shown (concise output: with --show-notes), never counted."""
        return [f for f in self.findings if not f.is_problem]

    def to_json(self) -> dict[str, Any]:
        from ..version import __version__

        out: dict[str, Any] = {"gradlint": __version__, "schema": 2}
        if self.run is not None:
            out["run"] = self.run
        out["models"] = [m.to_json() for m in self.models]
        return out
