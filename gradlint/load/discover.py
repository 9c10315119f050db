"""Discovery: import a target's file and list the models it defines (``nn.Module`` classes that
build with no arguments, the target's own factory or class, configured targets)."""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..ir.errors import StageError, stage_error
from ..ir.source import Location, display_path
from .importer import import_user_file, user_stdout_to_stderr
from .limits import PASS_THROUGH
from .targets import Target


@dataclass
class Candidate:
    """One model the file defines: something to call to get an ``nn.Module``."""

    target: Target
    factory: Callable[..., Any]
    location: Location | None  # where the class or factory is defined

    @property
    def name(self) -> str:
        return self.target.attr or "?"


@dataclass
class LoadedFile:
    target: Target
    module: types.ModuleType | None = None
    candidates: list[Candidate] = field(default_factory=list)
    example_inputs: Callable[[], Any] | None = None
    loss: Callable[..., Any] | None = None
    project_files: list[str] = field(default_factory=list)  # user files the import pulled in
    error: StageError | None = None
    usage_error: str | None = None  # the target names something the file does not define (exit 2)
    discovered: bool = False  # candidates found by discovery (vs. named by the target)


def definition_location(obj: Any) -> Location | None:
    """Where a class or function is defined (the user's file and line), or None for builtins."""
    try:
        file = inspect.getsourcefile(obj)
        _, line = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return None
    return Location(display_path(file), max(line, 1), 1) if file else None


def _callable_without_arguments(obj: Any) -> bool:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in sig.parameters.values()
    )


def _is_model_class(obj: Any, module: types.ModuleType) -> bool:
    import torch.nn as nn

    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        return False
    if obj.__module__ != module.__name__ or inspect.isabstract(obj):
        return False
    # A class that never defines forward (a mixin or an abstract base) is not a model.
    return obj.forward is not nn.Module.forward


def load_file(target: Target, configured: list[Target] | None = None) -> LoadedFile:
    """Import the target's file and list the models to build. Errors become ``out.error``."""
    out = LoadedFile(target)
    try:
        with user_stdout_to_stderr():
            out.module, out.project_files = import_user_file(target.path)
    except SystemExit as e:
        out.error = StageError("import", f"the file called sys.exit({e.code}) at import",
                               None, "guard script code with `if __name__ == \"__main__\":`")
        return out
    except BaseException as e:  # noqa: BLE001 - user code may raise anything
        if isinstance(e, PASS_THROUGH):
            raise
        hint = None
        if isinstance(e, ModuleNotFoundError):
            hint = f"install {e.name!r} in the environment gradlint runs in"
        out.error = stage_error("import", e, hint, Location(display_path(target.path), 1, 1))
        return out

    module = out.module
    ex = getattr(module, "example_inputs", None)
    out.example_inputs = ex if callable(ex) else None
    loss = getattr(module, "gradlint_loss", None)
    out.loss = loss if callable(loss) else None

    if target.attr is not None:
        obj = getattr(module, target.attr, None)
        if obj is None:
            out.usage_error = missing_name_message(target, module)
            return out
        if not callable(obj):
            out.error = StageError(
                "import", f"{target.attr!r} is a {type(obj).__name__}, not an nn.Module class or a factory",
                definition_location(obj) or Location(display_path(target.path), 1, 1),
            )
            return out
        out.candidates.append(Candidate(target, obj, definition_location(obj)))
        return out

    out.discovered = True
    names = set()
    for name, obj in vars(module).items():
        if _is_model_class(obj, module) and _callable_without_arguments(obj):
            names.add(name)
            out.candidates.append(Candidate(target.with_attr(name), obj, definition_location(obj)))
    for t in configured or []:
        if t.attr and t.attr not in names and Path(t.path).resolve() == Path(target.path).resolve():
            obj = getattr(module, t.attr, None)
            if callable(obj):
                out.candidates.append(Candidate(Target(target.path, t.attr, t.args, t.kwargs, t.call_text), obj,
                                                definition_location(obj)))
    out.candidates.sort(key=lambda c: (c.location.line if c.location else 0, c.name))
    return out


def defined_names(module: types.ModuleType) -> list[str]:
    """The classes and functions a module defines itself (not imports), in source order."""
    found = []
    for name, obj in vars(module).items():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None) == module.__name__ \
                and not name.startswith("_"):
            loc = definition_location(obj)
            found.append((loc.line if loc else 0, name))
    return [name for _, name in sorted(found)]


def missing_name_message(target: Target, module: types.ModuleType) -> str:
    """``file.py::Missing``: which names exist, the closest first."""
    import difflib

    names = defined_names(module)
    close = difflib.get_close_matches(target.attr or "", names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = f"it defines {', '.join(names)}" if names else "it defines no class or function"
    return f"{target.spec}: {target.path} defines no {target.attr!r}{hint}; {listing}"
