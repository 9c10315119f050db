"""The stages one model goes through, and the record they share.

A stage is an object with a ``name`` and a ``__call__(run)``: it reads what earlier stages left in
the ``ModelRun`` and adds its own part (the graph, the estimate, the measurement, findings), and
records what the user should see in ``run.report``. ``STAGES`` is the order. To add a stage, write
one class here (or a module it calls into) and put it in ``STAGES``; the runner times it, and
turns its ``StageError`` into a GL001 finding for this model (``required`` stages end the
model's analysis, the others keep what was found so far).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..config import Config
from ..ir.errors import one_line
from ..rules.finding import Finding
from .records import LayerReport, ModelReport

if TYPE_CHECKING:
    from ..capture.inputs import ExampleInputs
    from ..estimate.propagate import Estimate
    from ..ir.graph import LayerGraph
    from ..ir.structure import Structure
    from ..load.build import BuiltModel
    from ..load.discover import LoadedFile
    from ..rules.default_init import InitReport
    from ..verify.measurement import Measurement


@dataclass
class ModelRun:
    """Everything known about one model while it is analysed: the inputs of the run, then each
    stage's product, then the report being written."""

    config: Config
    enabled: set[str]  # the selected rule codes
    loaded: LoadedFile
    built: BuiltModel
    report: ModelReport
    example: ExampleInputs | None = None  # capture
    graph: LayerGraph | None = None  # capture
    structure: Structure | None = None  # structure
    init: InitReport | None = None  # structure (GL104's evidence)
    estimate: Estimate | None = None  # estimate
    measurement: Measurement | None = None  # verify
    findings: list[Finding] = field(default_factory=list)  # rules, and GL001 of failed stages
    internal_errors: list[str] = field(default_factory=list)  # gradlint's own bugs (exit code 2)

    @property
    def spec(self) -> str:
        return self.built.candidate.target.spec


class Stage(Protocol):
    name: ClassVar[str]
    required: ClassVar[bool]  # a failure ends the model's analysis

    def __call__(self, run: ModelRun) -> None: ...


class CaptureStage:
    """The graph, captured on the example inputs (guessed image sides retried)."""

    name = "capture"
    required = True

    def __call__(self, run: ModelRun) -> None:
        from ..capture import capture_with_inputs

        built = run.built
        device = "meta" if built.meta_model is not None else "cpu"
        run.graph, run.example = capture_with_inputs(built, run.loaded, run.config, device)
        r = run.report
        r.capture = run.graph.capture
        r.notes += built.notes + run.graph.notes
        r.input_source = run.graph.input_source
        r.parameters = built.parameters
        r.materialized = built.materialized
        r.project_files = list(run.loaded.project_files)
        r.graph = run.graph
        r.layers = _with_frozen(run.graph, [LayerReport(n.module or n.op, n.module_type or n.kind, n.location)
                                            for n in run.graph.weight_layers()])
        frozen = run.graph.frozen_layers()
        if frozen:
            names = ", ".join(n.module or n.op for n in frozen[:3]) + (", ..." if len(frozen) > 3 else "")
            r.notes.append(f"{len(frozen)} frozen layer{'s' if len(frozen) != 1 else ''} ({names}): requires_grad=False, "
                           "so not weight layers (training computes no gradient for them); the gradient still "
                           "flows through them to earlier trainable layers")


class StructureStage:
    """Depth, skip connections and runs (``ir.structure``), and whether layers keep the default init."""

    name = "structure"
    required = False

    def __call__(self, run: ModelRun) -> None:
        from ..ir.structure import Structure
        from ..rules.default_init import check_init, model_class_files, source_init_sites

        built = run.built
        run.structure = Structure(run.graph)
        run.report.depth = run.structure.depth
        run.report.shortest_depth = run.structure.shortest_depth
        try:
            run.init = check_init(run.graph, built, built.init_touched, built.saw_custom_init,
                                  lambda: source_init_sites(model_class_files(built.model)))
        except Exception as e:  # noqa: BLE001 - never lose the other results to this
            run.internal_errors.append(f"{run.spec}: init check: {one_line(e)}")


class EstimateStage:
    """Each weight layer's gradient at initialization, predicted (``estimate/``)."""

    name = "estimate"
    required = False

    def __call__(self, run: ModelRun) -> None:
        from ..estimate.run import estimate_model

        est = estimate_model(run.graph, run.built, run.loaded, run.example, run.config)
        run.estimate = est
        r = run.report
        r.thresholds = run.config.thresholds
        r.estimate = est.plain()
        by_module = {ly.module: ly for ly in est.layers}
        layers = [LayerReport(ly.module, ly.type, ly.location) for ly in est.layers]
        r.layers = _with_frozen(run.graph, layers) if layers else r.layers
        for lr in r.layers:
            ly = by_module.get(lr.module)
            if ly is not None:
                lr.estimate = {"grad_ratio": _json_float(ly.grad_ratio), "bound": _json_float(ly.bound),
                               "act_rms": _json_float(ly.act_rms), "grad_rms": _json_float(ly.grad_rms)}
        r.summary.estimated_attenuation = _json_float(est.attenuation)
        r.summary.verdict = r.thresholds.verdict(est.attenuation, structural_zero=bool(est.zero_reason),
                                                 collapsed=est.collapsed)
        from ..estimate.propagate import describe_unhandled

        for line in describe_unhandled(est.unhandled)[:5]:
            r.notes.append(f"estimate: no model for {line}")
        last = est.last
        if last is not None and last.grad_ratio is None and not last.zero:
            # every ratio is relative to the last weight layer: say why there are none
            r.notes.append(f"estimate: no gradient reaches the last weight layer ({last.module}) in the "
                           "captured graph, so no grad_ratio can be formed; please report the model")


class VerifyStage:
    """``--verify``: one measured forward/backward pass (``verify/``)."""

    name = "verify"
    required = False

    def __call__(self, run: ModelRun) -> None:
        if not run.config.verify:
            return
        if run.config.depth:
            from .depth import depth_check, describe

            run.report.depth_check = depth_check(run)
            run.report.notes.insert(0, describe(run.report.depth_check, run.report.summary.estimated_attenuation))
            return
        from ..verify.run import measure_model

        m = measure_model(run.graph, run.built, run.loaded, run.example, run.config,
                          saturation_threshold=_rule_option(run.config, "GL303", "threshold"))
        r = run.report
        if m is None:
            r.notes.append("verify: the model has no weight layer to measure")
            return
        run.measurement = m
        r.measurement = m
        by_name = {lm.module: lm for lm in m.layers}
        same_order = [lr.module for lr in r.weight_layers] == [lm.module for lm in m.layers]
        for i, lr in enumerate(r.weight_layers):
            lm = m.layers[i] if same_order else by_name.get(lr.module)
            if lm is not None:
                lr.measured = {"grad_ratio": lm.grad_ratio, "grad_norm": lm.grad_norm, "grad_rms": lm.grad_rms,
                               "act_rms": lm.act_rms}
        r.summary.measured_attenuation = m.attenuation
        r.summary.measured_verdict = m.verdict
        r.notes += [f"verify: {note}" for note in m.notes]
        if m.verdict == "structural-zero":
            first = m.first_layer
            cause = first.zero_cause if first is not None and first.zero_cause else "a zero-initialized weight"
            r.notes.append(f"verify: structural zero: the gradient reaching the early layers is exactly 0 because "
                           f"{cause} is zero at initialization; it resolves after the first optimizer step "
                           "(not a vanishing gradient)")


class RulesStage:
    """Every selected rule whose inputs exist (``rules/``), each isolated from the others' bugs."""

    name = "rules"
    required = False

    def __call__(self, run: ModelRun) -> None:
        from ..rules import RuleContext, all_rules
        from ..rules.evidence import evidence_of, gate

        ctx = RuleContext(graph=run.graph, structure=run.structure, options={}, init=run.init,
                          estimate=run.estimate, measurement=run.measurement, config=run.config,
                          extras={"parameters": run.built.parameters}, location=run.built.candidate.location)
        thresholds = run.config.thresholds
        evidence = evidence_of(run.estimate, run.measurement, thresholds)
        gated = run.config.structural != "always"
        for code, rule_cls in all_rules().items():
            if code not in run.enabled or code == "GL001":
                continue
            if rule_cls.requires == "estimate" and run.estimate is None:
                continue
            if rule_cls.requires == "measurement" and run.measurement is None:
                continue
            rule = rule_cls(run.config.rule_options(code, rule_cls.name))
            ctx.options = rule.opts
            try:
                found = list(rule.check(ctx))
            except Exception as e:  # noqa: BLE001 - a rule bug must not hide the other rules
                run.internal_errors.append(f"{run.spec}: rule {code} crashed: {one_line(e)}")
                continue
            if gated and rule_cls.evidence_gated:
                found = [gate(f, evidence, thresholds) for f in found]
            run.findings += found


class AdviseStage:
    """Fixes with their predicted effect (``advise/``) for the warnings and errors about a model
    whose gradient vanishes or explodes: GL1xx/GL2xx, and GL3xx when --verify measured."""

    name = "advise"
    required = False

    def __call__(self, run: ModelRun) -> None:
        from ..advise import advise, direction_of, init_host

        eligible = [f for f in run.findings if f.severity in ("error", "warning") and _advisable(f.code, run)]
        est = run.estimate
        if not eligible or est is None or est.weights is None or not run.config.advise:
            return
        th = run.config.thresholds
        m = run.measurement
        direction = (direction_of(m.verdict, m.attenuation, th) if m is not None else None) \
            or direction_of(run.report.summary.verdict, est.attenuation, th)
        if direction is None:
            return
        fixes, count = advise(run.graph, est, run.built.model, init_host(run.built), th, direction)
        run.report.fixes = fixes
        run.report.notes.append(f"advise: {count} counterfactual estimates for {len(fixes)} fixes")
        for f in eligible:
            f.fixes = list(fixes)  # the same Fix objects: marking one manual or applied marks it everywhere


def _advisable(code: str, run: ModelRun) -> bool:
    return code.startswith(("GL1", "GL2")) or (code.startswith("GL3") and run.measurement is not None)


STAGES: tuple[Stage, ...] = (CaptureStage(), StructureStage(), EstimateStage(), VerifyStage(), RulesStage(),
                             AdviseStage())


def _with_frozen(graph: LayerGraph, layers: list[LayerReport]) -> list[LayerReport]:
    """The weight layers with the frozen ones (``"frozen": true``, no numbers) at their place in
    forward execution order."""
    frozen = graph.frozen_layers()
    if not frozen:
        return layers
    position = {}
    for n in graph:
        position.setdefault(n.module or f"#{n.id}", n.id)
    rows, last = [], 0
    for lr in layers:
        last = position.get(lr.module, last)  # a layer found by another name keeps its neighbours' place
        rows.append((last, lr))
    rows += [(n.id, LayerReport(n.module or n.op, n.module_type or n.kind, n.location, frozen=True)) for n in frozen]
    return [lr for _, lr in sorted(rows, key=lambda r: r[0])]


def _json_float(x: float | None) -> float | None:
    """JSON has no inf/nan (the renderer is strict): clamp to the double range."""
    if x is None or math.isnan(x):
        return None
    return max(min(x, 1e308), -1e308)


def _rule_option(config: Config, code: str, option: str) -> Any:
    from ..rules import get_rule

    rule = get_rule(code)
    return rule(config.rule_options(rule.code, rule.name)).opts[option]
