"""Load: import the user's file, find its models and build them.

User code runs here and only here (import and construction), the way pytest imports test files:
the file's folder (or its package root) goes on ``sys.path`` and ``if __name__ == "__main__":``
blocks do not run.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .ir.errors import StageError, stage_error
from .ir.source import Location, display_path, is_library_file
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
    discovered: bool = False  # candidates found by discovery (vs. named by the target)


@contextlib.contextmanager
def user_stdout_to_stderr():
    """User code that prints must not corrupt ``--format json`` on stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _package_root(path: Path) -> tuple[Path, str] | None:
    """For a file inside a package (folders with __init__.py), the root folder and dotted name."""
    parts = [path.stem] if path.name != "__init__.py" else []
    folder = path.parent
    if not (folder / "__init__.py").exists():
        return None
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    if not all(p.isidentifier() for p in parts):
        return None
    return folder, ".".join(parts)


_counter = 0


def import_user_file(path: str) -> tuple[types.ModuleType, list[str]]:
    """Import ``path`` as a module; returns it and the project files the import pulled in."""
    global _counter
    file = Path(path).resolve()
    before = set(sys.modules)
    pkg = _package_root(file)
    if pkg is not None:
        root, dotted = pkg
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        module = importlib.import_module(dotted)
    else:
        if str(file.parent) not in sys.path:
            sys.path.insert(0, str(file.parent))
        name = file.stem if file.stem.isidentifier() else re.sub(r"\W", "_", file.stem)
        existing = sys.modules.get(name)
        if existing is not None and getattr(existing, "__file__", None) != str(file):
            _counter += 1
            name = f"_gradlint_target_{_counter}_{name}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    project = {str(file)}
    for mod_name in set(sys.modules) - before:
        f = getattr(sys.modules.get(mod_name), "__file__", None)
        if f and f.endswith(".py") and not is_library_file(f):
            project.add(str(Path(f).resolve()))
    project |= referenced_project_files(module)
    return module, sorted(project)


def referenced_project_files(module: types.ModuleType) -> set[str]:
    """User files a module uses, through the modules, classes and functions it references.

    An import diff alone misses a helper module that an earlier target already imported; the
    cache must still be invalidated when that helper changes.
    """
    seen: set[str] = set()
    files: set[str] = set()
    stack = [module]
    while stack:
        mod = stack.pop()
        if mod.__name__ in seen:
            continue
        seen.add(mod.__name__)
        f = getattr(mod, "__file__", None)
        if not f or is_library_file(f):
            continue
        files.add(str(Path(f).resolve()))
        for value in list(vars(mod).values()):
            if isinstance(value, types.ModuleType):
                stack.append(value)
            else:
                try:
                    owner = sys.modules.get(getattr(value, "__module__", None) or "")
                except Exception:  # noqa: BLE001 - exotic objects (lazy proxies) may raise
                    continue
                if isinstance(owner, types.ModuleType) and owner.__name__ not in seen:
                    stack.append(owner)
    return files


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
            out.error = StageError(
                "import", f"{target.path} defines no {target.attr!r}",
                Location(display_path(target.path), 1, 1),
                "name a class or a factory function defined in the file",
            )
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


def call_factory(candidate: Candidate) -> Any:
    t = candidate.target
    return candidate.factory(*t.args, **dict(t.kwargs))


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class BuiltModel:
    candidate: Candidate
    model: Any  # the module rules read weights from: materialized on CPU or on meta
    meta_model: Any | None  # the weightless twin used for capture (may be ``model`` itself)
    materialized: bool
    sites: dict  # qualified module name -> Location where the user constructed it
    parameters: int
    notes: list[str] = field(default_factory=list)
    init_touched: set[str] = field(default_factory=set)  # parameters init code touched while building
    saw_custom_init: bool = False
    # meta builds: parameter -> the value law init code left in it (initlaw.Law), None when unknown;
    # absent when no init code touched it (or torch's default init came last). None: not recorded.
    init_laws: dict[str, Any] | None = None


def build_model(candidate: Candidate, materialize_limit: int, need_weights: bool = True,
                device: str = "cpu") -> BuiltModel:
    """Build on the meta device (no memory), then materialize when small enough.

    A constructor that cannot run on meta (one that calls ``.item()``, say) is built on
    ``device`` directly.
    """
    import torch
    import torch.nn as nn

    from .initcheck import InitRecorder
    from .provenance import ConstructionRecorder

    def construct(dev: str):
        with ConstructionRecorder() as rec, torch.device(dev), user_stdout_to_stderr(), \
                InitRecorder(laws=dev == "meta") as irec:
            obj = call_factory(candidate)
        if not isinstance(obj, nn.Module):
            raise StageError(
                "build", f"{candidate.target.spec} returned {type(obj).__name__}, not an nn.Module",
                candidate.location, "return the model from the factory",
            )
        # Keyed by qualified name, so the meta twin and the materialized model share one map.
        sites = {name: rec.sites.get(m) for name, m in obj.named_modules()}
        # The root was made by gradlint's call, not the user's code: point at its definition.
        sites[""] = candidate.location
        init = (irec.touched_names(obj), irec.saw_custom_init, irec.laws_by_name(obj) if irec.track else None)
        return obj, {k: v for k, v in sites.items() if v is not None}, init

    notes: list[str] = []
    meta_model = None
    try:
        meta_model, sites, init = construct("meta")
    except StageError:
        raise
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, PASS_THROUGH):
            raise
        notes.append(f"could not build on the meta device ({type(e).__name__}); built on {device}")
    if meta_model is not None:
        n_params = count_parameters(meta_model)
        if not need_weights or n_params > materialize_limit:
            if need_weights:
                notes.append(
                    f"{n_params:,} parameters exceed materialize-limit ({materialize_limit:,}): "
                    "weights not materialized, init read from the init code (recorded) and the module types"
                )
            return BuiltModel(candidate, meta_model, meta_model, False, sites, n_params, notes, *init)
    try:
        model, sites, init = construct(device)
    except StageError:
        raise
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, PASS_THROUGH):
            raise
        raise stage_error("build", e, fallback=candidate.location) from None
    model.train()
    if meta_model is not None:
        meta_model.train()
    return BuiltModel(candidate, model, meta_model, True, sites, count_parameters(model), notes, *init)
