"""The Python API: analyse an ``nn.Module`` you already have (a test, a notebook).

    report = gradlint.analyze(model, example_inputs=(torch.randn(8, 64),))
    report.summary.measured_verdict, report.findings, report.layers[0].measured

It returns the same ``ModelReport`` the command line renders, through the same pipeline. The
model is not copied: it is captured and measured where it lies, and its training flags,
``requires_grad`` flags, gradients and buffers are put back afterwards.

Locations: gradlint did not watch this model being constructed, so there are no construction
sites. Each layer points at the line of the nearest enclosing class of yours that assigns it
(``self.fc = ...`` in ``Block.__init__``), else at that class's definition.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from typing import Any, Callable

from .config import Config
from .ir.source import Location
from .load.build import BuiltModel
from .load.discover import definition_location
from .pipeline.records import ModelReport


def analyze(model: Any, example_inputs: Any = None, verify: bool = True, config: Config | None = None, *,
            loss: Callable[..., Any] | None = None, device: str | None = None, seed: int | None = None,
            select: list[str] | None = None) -> ModelReport:
    """Analyse ``model``; with ``verify`` also measure one forward/backward pass.

    ``example_inputs``: a tensor, a tuple of positional inputs, a dict of keyword inputs or
    ``(args, kwargs)``; None infers them from the first layer like the CLI. ``loss``: a function of
    the output (and, if it takes more, the positional inputs) replacing the random projection.
    ``device``: where to measure (default: where the model's parameters are).
    """
    import torch.nn as nn

    from .ir.source import display_path
    from .load.build import count_parameters
    from .load.discover import Candidate, LoadedFile
    from .load.targets import Target
    from .pipeline.run import Session, analyze_built
    from .rules import check_rule_options, select_rules
    from .verify.options import prepare
    from .verify.passes import SavedState

    if not isinstance(model, nn.Module):
        raise TypeError(f"analyze() needs an nn.Module, got {type(model).__name__}")
    cfg = dataclasses.replace(config) if config is not None else Config()
    cfg.verify = bool(verify)
    if seed is not None:
        cfg.seed = seed
    if device is not None:
        cfg.device = device
    elif config is None:
        p = next(iter(model.parameters()), None)
        cfg.device = str(p.device) if p is not None else "cpu"
    prepare(cfg)  # ConfigError (a ValueError) for a missing extra or an absent CUDA

    cls = type(model)
    file = _source_file(cls)
    path = display_path(file) if file else "<in-memory>"
    target = Target(path, cls.__name__)
    class_loc = definition_location(cls)
    inputs = example_inputs
    loaded = LoadedFile(target, module=inspect.getmodule(cls),
                        example_inputs=(lambda: inputs) if inputs is not None else None,
                        loss=loss, project_files=[file] if file else [])
    built = InMemoryModel(Candidate(target, lambda: model, class_loc), model, None, True, in_memory_sites(model),
                          count_parameters(model),
                          ["in-memory model: no construction sites; locations point at the enclosing class's "
                           "assignment of each layer, else at the class definition"])
    enabled = select_rules(select if select is not None else cfg.select, cfg.extend_select, cfg.ignore)
    check_rule_options(cfg.rules, cfg.source)
    session = Session(cfg, enabled)
    saved = SavedState(model, preserve_buffers=True)  # capture, too, may run the forward in train mode
    try:
        report = analyze_built(built, loaded, session)
    finally:
        saved.restore()
    if cfg.plot or cfg.tensorboard:
        from .pipeline.records import Report
        from .report.outputs import write_files

        write_files(Report(models=[report]), cfg)
    for msg in session.internal_errors:
        report.notes.append(f"internal error: {msg}")
        warnings.warn(f"gradlint internal error: {msg}", RuntimeWarning, stacklevel=2)
    return report


@dataclasses.dataclass
class InMemoryModel(BuiltModel):
    """A model the caller built: verify puts its buffers back after measuring."""

    in_memory: bool = True


def _source_file(cls: type) -> str | None:
    try:
        return inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return None


def _is_user_class(cls: type) -> bool:
    from .ir.source import is_library_file

    file = _source_file(cls)
    return bool(file) and not is_library_file(file)


_ASSIGN_CACHE: dict[tuple[type, str], Location | None] = {}


def _assignment(cls: type, attr: str) -> Location | None:
    """The line in ``cls`` (or a user base class) that assigns ``self.<attr>``."""
    from .ir.source import display_path

    key = (cls, attr)
    if key in _ASSIGN_CACHE:
        return _ASSIGN_CACHE[key]
    found = None
    pattern = re.compile(rf"\bself\.{re.escape(attr)}\s*(?::[^=]*)?=(?!=)")
    for klass in cls.__mro__:
        if not _is_user_class(klass):
            continue
        try:
            lines, start = inspect.getsourcelines(klass)
            file = inspect.getsourcefile(klass)
        except (TypeError, OSError):
            continue
        for i, text in enumerate(lines):
            mt = pattern.search(text)
            if mt:
                found = Location(display_path(file), start + i, mt.start() + 1)
                break
        if found:
            break
    _ASSIGN_CACHE[key] = found
    return found


def in_memory_sites(model: Any) -> dict[str, Location]:
    """Qualified module name -> the nearest user-class line that assigns it (or a class definition)."""
    modules = dict(model.named_modules())
    sites: dict[str, Location] = {}
    root_loc = definition_location(type(model))
    for name, module in modules.items():
        loc = None
        parts = name.split(".") if name else []
        for k in range(len(parts) - 1, -1, -1):
            ancestor = modules.get(".".join(parts[:k]))
            if ancestor is not None and _is_user_class(type(ancestor)):
                loc = _assignment(type(ancestor), parts[k])
                if loc is None:
                    loc = definition_location(type(ancestor))
                break
        if loc is None:
            loc = definition_location(type(module)) if _is_user_class(type(module)) else root_loc
        if loc is not None:
            sites[name] = loc
    return sites
