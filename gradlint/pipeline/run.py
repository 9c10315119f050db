"""The pipeline: target spec -> load -> capture -> (estimate) -> rules -> (verify) -> ModelReport.

Each stage lives in its own module; this one only sequences them, turns a failing stage into a
GL001 finding for that model, and applies selection and suppression. A failure in one model never
hides the results of the others.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..ir.errors import StageError, one_line
from ..ir.source import Location
from ..load.targets import Target, expand_targets, parse_target
from .records import FileResult, ModelReport, Report
from .suppress import filter_findings


@dataclass
class Session:
    """What stays the same across all models of one run."""

    config: Config
    enabled: set[str]
    internal_errors: list[str] = field(default_factory=list)
    # Told where the analysis is (phase, model spec, its location, whether a --timeout clock
    # starts): the worker forwards it to the parent (pipeline/workers.py).
    progress: Callable[..., None] | None = None

    def enter(self, phase: str, model: str | None = None, location: Location | None = None,
              timed: bool = False) -> None:
        if self.progress is not None:
            self.progress(phase, model, location, timed)


def run(specs: list[str], config: Config, enabled: set[str], jobs: int = 1, use_cache: bool = False,
        isolate: bool = False, with_dependents: bool = False) -> tuple[Report, Session]:
    """Analyse every target. ``isolate`` (the command line): each file in a worker process of its
    own (workers.py), ``jobs`` at a time, results in the order of a serial run; else in this
    process, which keeps each report's captured graph (tests, benchmarks). ``with_dependents``:
    also the files the cache recorded as importing one of the given files (a changed helper)."""
    from .cache import Cache, config_fingerprint
    from .workers import FileJob, Limits, analyze_files, isolation_available, needs_spawn

    session = Session(config, enabled)
    report = Report()
    expansion = expand_targets(specs, config.exclude)
    report.usage_errors += expansion.errors
    report.messages += expansion.skipped
    targets = expansion.targets
    explicit = [t.path in specs or t.spec in specs for t in targets]

    cache = None
    if use_cache:
        root = config.root or Path.cwd()
        cache = Cache(root / config.cache_dir, config_fingerprint(config, enabled))
    if with_dependents:
        add_dependents(targets, explicit, config)

    results: list[FileResult | None] = [cache.get(t) if cache else None for t in targets]

    def finished(i: int, result: FileResult) -> None:
        results[i] = result
        if cache is not None and result.cacheable and not result.internal_errors:
            cache.put(targets[i], result)  # at once: an interrupted run keeps what it finished

    todo = [FileJob(i, targets[i], explicit[i]) for i, r in enumerate(results) if r is None]
    if todo and isolate and isolation_available():
        # A warm-up pays torch's and gradlint's first-call work once instead of in every worker:
        # worth it from two files on.
        threads = 0 if needs_spawn(config) else prepare_workers(warm=len(todo) > 1)
        analyze_files(todo, session, jobs, Limits(config.timeout, config.memory_limit, threads), finished,
                      analyze_file, failed_report)
    else:
        for job in todo:
            finished(job.index, analyze_file(job.target, session, job.explicit))
    for result in results:
        assert result is not None
        report.models += result.reports
        report.messages += result.messages
        report.usage_errors += result.usage_errors
        session.internal_errors += [e for e in result.internal_errors if e not in session.internal_errors]
    return report, session


def prepare_workers(dynamo: bool = False, warm: bool = True) -> int:
    """Import (and ``warm`` up) this process before workers are forked from it (workers.preload);
    the threads a worker may give torch for --verify."""
    from .workers import preload

    return preload(dynamo, warm_up if warm else None)


def warm_up() -> None:
    """Analyse ``warmup_model.py`` here, findings dropped: torch's and gradlint's first-call work."""
    from ..rules import select_rules

    from .serialize import dumps, loads
    from .suppress import scan

    path = str(Path(__file__).with_name("warmup_model.py"))
    result = analyze_file(Target(path), Session(Config(cache=False), select_rules(["ALL"], [], [])), explicit=False)
    scan(path)  # the noqa scan skips gradlint's own files: run it once here
    loads(dumps(result, FileResult), FileResult)  # the serializer's type-hint tables


def spawned_worker() -> None:
    """Entry point of a worker started as a fresh interpreter (CUDA: pipeline/workers.py)."""
    from .workers import spawned_main

    spawned_main(Session, analyze_file)


def add_dependents(targets: list[Target], explicit: list[bool], config: Config) -> None:
    """Add the model files whose recorded dependencies include a target file (a helper module
    changed in a commit); a target that is such a helper says nothing when it defines no model."""
    from .cache import DependencyIndex

    index = DependencyIndex((config.root or Path.cwd()) / config.cache_dir)
    given = [str(Path(t.path).resolve()) for t in targets]
    for i, path in enumerate(given):
        if index.is_dependency(path):
            explicit[i] = False
    known = set(given)
    for path in index.dependents(set(given)):
        if path not in known and Path(path).is_file():
            known.add(path)
            targets.append(Target(_display(path)))
            explicit.append(False)


def configured_targets(config: Config) -> list[Target]:
    out = []
    for spec in config.models:
        t = parse_target(spec)
        if config.root is not None and not os.path.isabs(t.path):
            t = Target(str(config.root / t.path), t.expr)
        out.append(t)
    return out


def failed_report(target: str, error: StageError, path: str, session: Session) -> ModelReport:
    from ..rules import all_rules

    rule = all_rules()["GL001"]()
    finding = rule.from_error(error)
    if finding.location is None:
        finding.location = Location(_display(path), 1, 1)
    m = ModelReport(target=target, status="failed", error={"stage": error.stage, "message": error.message}, path=path,
                    missing_module=error.missing_module)
    m.findings = filter_findings([finding], m, session) if "GL001" in session.enabled else []
    return m


def unbuilt_report(unbuilt: Any, target: Target, session: Session) -> ModelReport:
    """A model class discovery found and could not build (``load.discover.Unbuilt``): a GL002
    warning at the class, with the target that would analyse it."""
    from ..rules import all_rules

    finding = all_rules()["GL002"]().from_unbuilt(unbuilt, target.path)
    if finding.location is None:
        finding.location = Location(_display(target.path), 1, 1)
    if unbuilt.cls is None:
        why = "no model found in the file"
    else:
        why = unbuilt.error or f"the constructor needs {', '.join(unbuilt.needs) or 'arguments'}"
    m = ModelReport(target=f"{target.path}::{unbuilt.name}" if unbuilt.cls is not None else target.path,
                    status="not-built",
                    error={"stage": "build", "message": why}, path=target.path)
    m.findings = filter_findings([finding], m, session) if "GL002" in session.enabled else []
    return m


def unbuilt_from_guess(candidate: Any, error: StageError) -> Any:
    """Discovery built ``candidate`` with arguments it guessed, and that failed."""
    from ..load.discover import Unbuilt, required_parameters
    from ..load.repository_calls import call_examples

    cls = candidate.builds
    return Unbuilt(cls, candidate.location, required_parameters(cls) or [], tried=candidate.target.expr,
                   error=error.message, examples=call_examples(candidate.target.path, cls.__name__, cls.__module__))


def _built_inside(cls: type, built: list) -> bool:
    """Whether some built model is, or contains, an instance of ``cls``."""
    return any(type(m) is cls for b, _ in built for m in b.model.modules())


def _display(path: str) -> str:
    from ..ir.source import display_path

    return display_path(path)


def analyze_file(target: Target, session: Session, explicit: bool = True) -> Any:
    """Everything about one file: import it, build each model, analyse each. Returns a FileResult."""
    from ..capture.lazy import materialize as materialize_lazy
    from ..load.build import build_model
    from ..load.discover import load_file
    from ..load.limits import TimeLimitExceeded, time_limit

    config = session.config
    errors_before = len(session.internal_errors)
    out = FileResult()
    _import_torch_outside_time_limits()
    t0 = time.perf_counter()
    session.enter("import", timed=True)
    try:
        with time_limit(config.timeout):
            loaded = load_file(target, configured_targets(config))
    except TimeLimitExceeded as e:
        err = StageError("import", f"importing the file {e}", Location(_display(target.path), 1, 1),
                         "raise --timeout, or move slow module-level code under `if __name__ == \"__main__\":`")
        out.reports.append(failed_report(target.spec, err, target.path, session))
        out.project_files = [str(Path(target.path).resolve())]
        return out
    out.project_files = loaded.project_files or [str(Path(target.path).resolve())]
    if loaded.usage_error is not None:
        out.usage_errors.append(loaded.usage_error)
        return out
    if loaded.error is not None:
        error = loaded.error
        if loaded.partial and loaded.candidates:
            error.message += "; the models defined before that line are analysed"
        out.reports.append(failed_report(target.spec, error, target.path, session))
        out.cacheable = not error.missing_module
        if not (loaded.partial and loaded.candidates):
            return out
    load_time = time.perf_counter() - t0

    built = []
    unbuilt = list(loaded.unbuilt)
    for cand in loaded.candidates:
        t1 = time.perf_counter()
        session.enter("build", cand.target.spec, cand.location, timed=True)
        try:
            with time_limit(config.timeout), _seeded(config.seed):
                b = build_model(cand, config.materialize_limit)
                materialize_lazy(b, loaded, config)
        except TimeLimitExceeded as e:
            err = StageError("build", f"the constructor {e} (--timeout)", cand.location,
                             "raise --timeout, or build a smaller configuration: file.py::Net(depth=2)")
            out.reports.append(failed_report(cand.target.spec, err, target.path, session))
            continue
        except StageError as e:
            if cand.guess:  # discovery's guess at the arguments was wrong: GL002 says what to write
                unbuilt.append(unbuilt_from_guess(cand, e))
                continue
            out.reports.append(failed_report(cand.target.spec, e, target.path, session))
            continue
        built.append((b, time.perf_counter() - t1))
    if loaded.discovered:
        built = _drop_components(built)
        # helpers without parameters (an activation class) are not models: skipped without a word
        # (one that owns parameters but no weight layer is GL003's)
        built = [(b, t) for b, t in built if b.parameters > 0]
        unbuilt = [u for u in unbuilt if not _built_inside(u.cls, built)]
    for u in unbuilt:
        out.reports.append(unbuilt_report(u, target, session))
    if not built and not out.reports:
        if explicit and loaded.nothing is not None:  # model code, yet nothing to build: never a silent pass
            out.reports.append(unbuilt_report(loaded.nothing, target, session))
        elif explicit:
            out.messages.append(f"{target.path}: no models found (define an nn.Module subclass whose constructor "
                                f"needs no arguments, or name one: {target.path}::Net(depth=4))")
        return out
    for b, build_time in built:
        session.enter("capture", b.candidate.target.spec, b.candidate.location, timed=True)
        try:
            with time_limit(config.timeout), _seeded(config.seed):
                m = analyze_built(b, loaded, session)
        except TimeLimitExceeded as e:
            err = StageError("capture", f"the analysis {e} (--timeout)", b.candidate.location,
                             "raise --timeout, or give smaller example inputs")
            m = failed_report(b.candidate.target.spec, err, target.path, session)
        m.timings = {"load": load_time, "build": build_time, **m.timings}
        out.reports.append(m)
    # an import error inside a constructor or forward, too: installing the module must be seen
    out.cacheable = not any(r.missing_module for r in out.reports)
    out.reports.sort(key=lambda r: _order_key(r, loaded))
    out.internal_errors = session.internal_errors[errors_before:]
    return out


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Weights drawn while building and example inputs feed the estimate (and --verify's
    measurement): a fixed seed (--seed, default 0) makes every run give the same numbers, so a
    finding near a threshold does not flicker in CI. The caller's RNG state is restored."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _import_torch_outside_time_limits() -> None:
    """An alarm that interrupts ``import torch`` leaves torch half-registered and the next import
    crashes the process. It is needed anyway; import it before any --timeout clock starts (the
    alarm also waits out torch's own lazy imports: load/limits.py)."""
    import torch  # noqa: F401


def _order_key(r: ModelReport, loaded: Any) -> int:
    for i, c in enumerate(loaded.candidates):
        if c.target.spec == r.target:
            return i
    return len(loaded.candidates)


def _drop_components(built: list) -> list:
    """A discovered class used inside another discovered model is a building block, not a model."""
    inner_types: set[type] = set()
    scripted: set[str] = set()  # torch.jit.script copies keep only their class's name
    for b, _ in built:
        for name, m in b.model.named_modules():
            if name:
                inner_types.add(type(m))
                if type(m).__name__ == "RecursiveScriptModule" and isinstance(getattr(m, "original_name", None), str):
                    scripted.add(m.original_name)
    kept = [(b, t) for b, t in built if type(b.model) not in inner_types and type(b.model).__name__ not in scripted]
    return kept or built


def analyze_built(built: Any, loaded: Any, session: Session) -> ModelReport:
    """Every stage on one built model (``stages.STAGES``), timed; a failing stage becomes GL001."""
    from .stages import STAGES, ModelRun

    spec = built.candidate.target.spec
    path = loaded.target.path
    run = ModelRun(session.config, session.enabled, loaded, built, ModelReport(target=spec, path=path))
    for stage in STAGES:
        t0 = time.perf_counter()
        session.enter(stage.name, spec, built.candidate.location)
        try:
            stage(run)
        except StageError as e:
            if stage.required:
                session.internal_errors += run.internal_errors
                return failed_report(spec, e, path, session)
            run.findings += failed_report(spec, e, path, session).findings
            run.report.notes.append(f"{e.stage} failed: {e.message}")
        except Exception as e:  # noqa: BLE001 - gradlint's own bug: keep the other results
            run.internal_errors.append(f"{spec}: {stage.name}: {one_line(e)}")
            if stage.required:
                session.internal_errors += run.internal_errors
                return failed_report(spec, StageError(stage.name, f"internal error: {one_line(e)}"), path, session)
        run.report.timings[stage.name] = time.perf_counter() - t0
    session.internal_errors += run.internal_errors
    run.report.findings = filter_findings(run.findings, run.report, session)
    return run.report
