"""Discovery: import a target's file and list the models it defines.

In a file (no ``::``), in this order (README, "Discovery"):

1. ``nn.Module`` classes defined in the file whose constructor needs no arguments;
2. module-level functions without required parameters whose return value is a model: a call of
   an ``nn.Module`` class, of another such function, of a classmethod constructor of one, or of a
   function declared to return a module, or a module-level object's network (``return
   yolo.model``) (read statically with libcst: no unknown function is called to find out);
3. module-level model instances (``model = Net(...)`` at import), taken as they are, and the
   network a module-level wrapper object holds (``model = PPO(...)``: ``model.policy``);
4. classes whose required constructor arguments are config objects that build with no arguments
   (``GPT(GPTConfig())``, matched by annotation or by a ``config``-like parameter name);
5. classes the file itself calls with literal arguments (``VGG('VGG11')`` in a ``test()``);
6. the targets configured under ``[tool.gradlint] models`` for this file.

Every other model class that could not be built is listed in ``LoadedFile.unbuilt`` (GL002 names
it and the target to write), unless it is a building block used by another class or factory
of the file, or has no weights. A ``::`` target is one expression evaluated in the file's namespace.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..ir.errors import StageError, missing_module, stage_error
from ..ir.source import Location, display_path
from .importer import import_user_file, user_stdout_to_stderr
from .limits import PASS_THROUGH
from .targets import Target

# Parameter names that hold a configuration object when nothing else says so.
CONFIG_PARAMETERS = frozenset({"config", "cfg", "conf", "configs", "hparams", "hp", "hps", "params", "opt", "opts",
                               "args", "settings", "model_config", "model_cfg", "options"})
CONFIG_SUFFIXES = ("config", "cfg", "conf", "args", "params", "options", "settings", "hparams")


@dataclass
class Candidate:
    """One model the file defines: something to call (with no arguments) to get an ``nn.Module``."""

    target: Target
    factory: Callable[[], Any]
    location: Location | None  # where the class or factory is defined
    prebuilt: Any = None  # a module the import already built (``model = Net()`` at module level)
    guess: bool = False  # discovery chose the arguments: a failed build means GL002, not GL001
    builds: type | None = None  # the class a guess builds (for GL002)
    search_path: list[str] = field(default_factory=list)  # sys.path entries its code runs with
    import_sites: Any = None  # where the import constructed each module (prebuilt models)

    @property
    def name(self) -> str:
        return self.target.name or "?"


@dataclass
class Unbuilt:
    """A model class of the file that nothing built: GL002 names it and the target to write. With
    ``cls`` None, the whole file: it looks like model code, yet nothing in it could be built."""

    cls: type | None
    location: Location | None
    needs: list[str]  # required constructor parameters
    tried: str | None = None  # the expression discovery tried, when one failed ("GPT(GPTConfig())")
    error: str | None = None  # ... and why it failed
    examples: list[str] = field(default_factory=list)  # "train.py:57: Generator(h)": how the repository calls it
    leads: list[str] = field(default_factory=list)  # the file: expressions that may give a model ("build")
    seen: list[str] = field(default_factory=list)  # the file: what it builds at import ("clf (TabNetClassifier)")

    @property
    def name(self) -> str:
        return self.cls.__name__ if self.cls is not None else "?"


@dataclass
class LoadedFile:
    target: Target
    module: types.ModuleType | None = None
    candidates: list[Candidate] = field(default_factory=list)
    unbuilt: list[Unbuilt] = field(default_factory=list)  # discovery: model classes nothing could build
    nothing: Unbuilt | None = None  # discovery found nothing in a file that looks like model code
    partial: bool = False  # the import raised (``error``); the models defined before that line are listed
    example_inputs: Callable[[], Any] | None = None
    loss: Callable[..., Any] | None = None
    project_files: list[str] = field(default_factory=list)  # user files the import pulled in
    search_path: list[str] = field(default_factory=list)  # sys.path entries the user's code runs with
    import_sites: Any = None  # module -> Location of the modules the import itself built
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


def required_parameters(obj: Any) -> list[str] | None:
    """The parameters a call must give (None when the signature cannot be read)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [n for n, p in sig.parameters.items()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _callable_without_arguments(obj: Any) -> bool:
    return required_parameters(obj) == []


def _is_model_class(obj: Any, module: types.ModuleType) -> bool:
    import torch.nn as nn

    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        return False
    if obj.__module__ != module.__name__ or inspect.isabstract(obj):
        return False
    # A class that never defines forward (a mixin or an abstract base) is not a model.
    return obj.forward is not nn.Module.forward


def has_weights(model: Any) -> bool:
    """Owns a parameter of two or more dimensions (a weight matrix or kernel)."""
    return any(p.dim() >= 2 for p in model.parameters())


class _ImportingNames(dict):
    """Names a target expression uses that the file does not define are imported as modules:
    ``json.load(...)`` works in a file that never imports json, ``env.AttrDict`` reads a sibling
    ``env.py``. (Looked up before the file's globals, so it defers to them first.)"""

    def __init__(self, module: types.ModuleType) -> None:
        super().__init__()
        self.module = module

    def __missing__(self, name: str) -> Any:
        import builtins
        import importlib

        if name in vars(self.module) or hasattr(builtins, name):
            raise KeyError(name)
        try:
            return importlib.import_module(name)
        except ImportError:
            raise KeyError(name) from None


def evaluate(expr: str, module: types.ModuleType) -> Any:
    """A target's expression, evaluated in the file's namespace. A class or a function it names
    is called with no arguments; anything else is the model as it is."""
    code = compile(expr, f"<target {expr}>", "eval")
    value = eval(code, vars(module), _ImportingNames(module))  # noqa: S307 - the user's own target
    if isinstance(value, type) or inspect.isfunction(value):
        value = value()
    return value


def resolve(module: types.ModuleType, dotted: str) -> Any:
    """The object a dotted name refers to in the module's namespace, by attribute lookup only."""
    import builtins

    first, *rest = dotted.split(".")
    obj = vars(module).get(first, vars(builtins).get(first))
    for part in rest:
        if obj is None:
            return None
        try:
            obj = getattr(obj, part, None)
        except Exception:  # noqa: BLE001 - an exotic attribute (lazy module proxy) that raises
            return None
    return obj


def load_file(target: Target, configured: list[Target] | None = None) -> LoadedFile:
    """Import the target's file and list the models to build. Errors become ``out.error``."""
    from .provenance import ConstructionRecorder

    out = LoadedFile(target)
    rec = ConstructionRecorder()
    try:
        with user_stdout_to_stderr(), rec:
            out.module, out.project_files, out.search_path = import_user_file(target.path)
        out.import_sites = rec.sites
    except BaseException as e:  # noqa: BLE001 - user code may raise anything
        if isinstance(e, PASS_THROUGH):
            raise
        if isinstance(e, SystemExit):
            out.error = StageError("import", f"the file called sys.exit({e.code}) at import",
                                   None, "guard script code with `if __name__ == \"__main__\":`")
        else:
            missing = missing_module(e)
            hint = f"install {missing!r} in the environment gradlint runs in" if missing else None
            out.error = stage_error("import", e, hint, Location(display_path(target.path), 1, 1))
        partial = getattr(e, "gradlint_partial", None)
        if partial is None or out.error.missing_module:
            return out
        # A script that fails later at import (loading a dataset, needing a GPU): the classes and
        # functions it defined before that line are still analysed, beside the GL001.
        out.module, out.search_path = partial
        sys.modules.setdefault(out.module.__name__, out.module)  # inspect finds its classes' source there
        out.project_files = [str(Path(target.path).resolve())]
        out.import_sites = rec.sites
        out.partial = True

    module = out.module
    ex = getattr(module, "example_inputs", None)
    out.example_inputs = ex if callable(ex) else None
    loss = getattr(module, "gradlint_loss", None)
    out.loss = loss if callable(loss) else None

    if target.expr is not None:
        if target.is_name and getattr(module, target.expr, None) is None and not out.partial:
            out.usage_error = missing_name_message(target, module)
            return out
        cand = _named_candidate(target, module, out.import_sites)
        if isinstance(cand, StageError):
            out.error = out.error if out.partial else cand
        else:
            out.candidates.append(cand)
        return _environment(out)

    out.discovered = True
    Discovery(out, module, configured or []).run()
    return _environment(out)


def _environment(out: LoadedFile) -> LoadedFile:
    for c in out.candidates:
        c.search_path = out.search_path
        c.import_sites = out.import_sites
    return out


def _named_candidate(target: Target, module: types.ModuleType, import_sites: Any) -> Candidate | StageError:
    """The candidate a ``file.py::EXPRESSION`` target names."""
    import torch.nn as nn

    where = Location(display_path(target.path), 1, 1)
    if target.is_name:
        obj = getattr(module, target.expr, None)
        if obj is None:
            return StageError("import", f"{target.path} defines no {target.expr!r}", where,
                              f"name one of the models it defines: {', '.join(_model_names(module)) or 'none found'}")
        if isinstance(obj, nn.Module):
            site = import_sites.get(obj) if import_sites is not None else None
            return Candidate(target, lambda: obj, site or definition_location(type(obj)), prebuilt=obj)
        held = held_models(obj)
        if len(held) == 1:  # ``model = PPO(...)``: its policy network
            attr, inner = held[0]
            site = import_sites.get(inner) if import_sites is not None else None
            return Candidate(target, lambda: inner, site or definition_location(type(inner)), prebuilt=inner)
        if held:
            names = ", ".join(f"{target.path}::{target.expr}.{a}" for a, _ in held)
            return StageError("import", f"{target.expr!r} is a {type(obj).__name__} holding several models",
                              where, f"name one: {names}")
        if not callable(obj):
            return StageError("import", f"{target.expr!r} is a {type(obj).__name__}, not an nn.Module class or a "
                                        "factory (nor a model)", definition_location(obj) or where)
        return Candidate(target, obj, definition_location(obj))
    head = resolve(module, target.name or "")
    location = definition_location(head) if head is not None and not isinstance(head, nn.Module) else None
    expr = target.expr
    return Candidate(target, lambda: evaluate(expr, module), location or where)


def held_models(obj: Any) -> list[tuple[str, Any]]:
    """The ``nn.Module`` attributes (with weights) of a plain object that wraps a model: an RL
    algorithm's ``policy``, a scikit-learn-style estimator's ``network``. Classes, functions and
    modules hold none."""
    import torch.nn as nn

    if obj is None or isinstance(obj, (type, types.ModuleType, types.FunctionType, nn.Module, str, bytes,
                                       int, float, list, tuple, dict, set)):
        return []
    try:
        attrs = vars(obj)
    except TypeError:
        return []
    return [(k, v) for k, v in attrs.items()
            if not k.startswith("_") and isinstance(v, nn.Module) and has_weights(v)]


def _model_names(module: types.ModuleType) -> list[str]:
    return [n for n, o in vars(module).items() if _is_model_class(o, module)][:12]


class Discovery:
    """Finds the models of one imported file (the numbered list in this module's docstring)."""

    def __init__(self, out: LoadedFile, module: types.ModuleType, configured: list[Target]) -> None:
        from .source_scan import FileScan, scan_file

        self.out = out
        self.module = module
        self.path = out.target.path
        self.scan = scan_file(self.path) or FileScan()
        self.configured = [t for t in configured
                           if t.expr is not None and Path(t.path).resolve() == Path(self.path).resolve()]
        self.classes = {n: o for n, o in vars(module).items() if _is_model_class(o, module) and n == o.__name__}
        self.covered: set[type] = set()  # classes some candidate builds
        self.factory_names: set[str] = set()
        self.wrappers: set[str] = set()  # module-level objects a factory returns a part of (``yolo``)

    def add(self, expr: str, factory: Callable[[], Any], obj: Any, **kw: Any) -> None:
        self.out.candidates.append(Candidate(Target(self.path, expr), factory, definition_location(obj), **kw))

    def run(self) -> None:
        configured_names = {t.name for t in self.configured}
        for name, cls in self.classes.items():
            if name not in configured_names and _callable_without_arguments(cls):
                self.add(name, cls, cls)
                self.covered.add(cls)
        self.factories()
        self.instances()
        for name, cls in self.classes.items():
            if cls in self.covered or name in configured_names:
                continue
            self.with_config_objects(name, cls) or self.with_literal_call(name, cls)
        for t in self.configured:
            expr = t.expr
            head = resolve(self.module, t.name or "")
            self.out.candidates.append(Candidate(Target(self.path, expr), lambda e=expr: evaluate(e, self.module),
                                                 definition_location(head) if head is not None else None))
            if isinstance(head, type):
                self.covered.add(head)
        self.out.candidates.sort(key=lambda c: (c.location.line if c.location else 0, c.name))
        self.out.unbuilt = [u for u in (self.unbuilt(name, cls) for name, cls in self.classes.items()
                                        if cls not in self.covered and name not in configured_names) if u]
        if not self.out.candidates and not self.out.unbuilt:
            self.out.nothing = self.nothing_found()

    def nothing_found(self) -> Unbuilt | None:
        """The whole file as one GL002 when it builds something at import, or defines a function
        without parameters that returns something, but no model was found: name what it has.
        Files with neither (helpers, weightless activations, plain utilities) stay quiet."""
        import torch.nn as nn

        seen = []
        for name in sorted(self.scan.module_names):
            obj = vars(self.module).get(name)
            if obj is None or isinstance(obj, (type, types.ModuleType, types.FunctionType, str, bytes, int, float,
                                               bool, list, tuple, dict, set, nn.Module)) or callable(obj):
                continue
            seen.append(f"{name} ({type(obj).__name__}, holding no nn.Module)")
        leads = [f for f in sorted(self.scan.returning)
                 if inspect.isfunction(vars(self.module).get(f)) and _callable_without_arguments(vars(self.module)[f])]
        if not (seen or leads):
            return None
        return Unbuilt(None, Location(display_path(self.path), 1, 1), [], leads=leads, seen=seen[:5])

    # -- 2. factories --------------------------------------------------------------------------
    def factories(self) -> None:
        """Module-level functions with no required parameters that return a model."""
        found: dict[str, Any] = {}
        changed = True
        while changed:  # a factory may return another factory's model: ResNet18() -> _resnet(...)
            changed = False
            for name, callees in self.scan.returns.items():
                fn = vars(self.module).get(name)
                if name in found or not inspect.isfunction(fn) or fn.__module__ != self.module.__name__:
                    continue
                if not _callable_without_arguments(fn):
                    continue
                makes = [self.model_maker(c, found) for c in callees]
                if all(m is not None for m in makes):
                    found[name] = fn
                    changed = True
                    self.covered.update(m for m in makes if isinstance(m, type))
        import torch.nn as nn

        for name, held in self.scan.returns_held.items():
            fn = vars(self.module).get(name)
            if name in found or not inspect.isfunction(fn) or not _callable_without_arguments(fn):
                continue
            objects = [resolve(self.module, h) for h in held]  # attribute lookups, nothing called
            if all(isinstance(o, nn.Module) and has_weights(o) for o in objects):
                found[name] = fn
                self.wrappers.update(h.split(".")[0] for h in held)
                self.covered.update(type(o) for o in objects)
        for name, fn in found.items():
            self.add(name, fn, fn)
        self.factory_names = set(found)

    def model_maker(self, callee: str, factories: dict[str, Any]) -> Any:
        """What ``callee(...)`` makes when that is a model: the class; True for a factory of the
        file or a function declared to return a module; None otherwise (never called to find out)."""
        import torch.nn as nn

        if callee in factories:
            return True
        obj = resolve(self.module, callee)
        if isinstance(obj, type):
            return obj if issubclass(obj, nn.Module) else None
        owner = getattr(obj, "__self__", None)
        if inspect.ismethod(obj) and isinstance(owner, type) and issubclass(owner, nn.Module):
            # a classmethod constructor (EfficientNet.from_name); never one that loads weights
            return None if "pretrained" in obj.__name__ or "load" in obj.__name__ else owner
        if inspect.isfunction(obj) or inspect.ismethod(obj):
            try:
                ret = inspect.signature(obj, eval_str=True).return_annotation
            except Exception:  # noqa: BLE001 - an annotation that does not evaluate says nothing
                return None
            if isinstance(ret, type) and issubclass(ret, nn.Module):
                return True
        return None

    # -- 3. instances --------------------------------------------------------------------------
    def instances(self) -> None:
        """Models the import built at module level (``model = Net(...)``), taken as they are; and the
        model a module-level wrapper object holds (stable-baselines3's ``model = PPO(...)`` holds
        ``model.policy``)."""
        import torch.nn as nn

        seen: set[int] = set()
        for name in sorted(self.scan.module_names):
            obj = vars(self.module).get(name)
            expr = name
            if name in self.wrappers:
                continue  # a factory returns the model inside it
            if not isinstance(obj, nn.Module):
                held = held_models(obj)
                if len(held) != 1:
                    continue
                attr, obj = held[0]
                expr = f"{name}.{attr}"
            if id(obj) in seen or not has_weights(obj):
                continue
            seen.add(id(obj))
            if type(obj) in self.covered:
                continue  # the class itself, or a factory of it, is analysed
            self.covered.add(type(obj))
            self.out.candidates.append(Candidate(Target(self.path, expr), lambda o=obj: o,
                                                 self.instance_location(obj), prebuilt=obj))

    def instance_location(self, obj: Any) -> Location | None:
        sites = self.out.import_sites
        loc = sites.get(obj) if sites is not None else None
        return loc or definition_location(type(obj))

    # -- 4. config objects ---------------------------------------------------------------------
    def with_config_objects(self, name: str, cls: type) -> bool:
        """``GPT(GPTConfig())`` when every required argument is a config object that builds
        with no arguments."""
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            return False
        needs = required_parameters(cls) or []
        if not needs:
            return False
        args = []
        for p in needs:
            config = self.config_class_for(name, params[p])
            if config is None:
                return False
            # the file's own instance of that class (``config = BertConfig(num_hidden_layers=4)``) is the
            # configuration it means; the class's defaults only when it has none
            cfg_cls = vars(self.module).get(config)
            instances = [n for n in sorted(self.scan.module_names)
                         if not n.startswith("_") and isinstance(cfg_cls, type)
                         and type(vars(self.module).get(n)) is cfg_cls]
            args.append(instances[0] if len(instances) == 1 else f"{config}()")
        positional = all(params[p].kind != params[p].KEYWORD_ONLY for p in needs)
        expr = f"{name}({', '.join(args if positional else [f'{p}={a}' for p, a in zip(needs, args)])})"
        module = self.module
        self.add(expr, lambda: evaluate(expr, module), cls, guess=True, builds=cls)
        self.covered.add(cls)
        return True

    def config_class_for(self, model_name: str, param: inspect.Parameter) -> str | None:
        """The name (in the file's namespace) of a no-argument config class for this parameter."""
        import torch.nn as nn

        def usable(obj: Any) -> bool:
            return (isinstance(obj, type) and not issubclass(obj, nn.Module) and _callable_without_arguments(obj)
                    and obj.__module__ not in ("builtins", "typing"))

        ann = param.annotation
        if isinstance(ann, str):
            ann = resolve(self.module, ann.strip("'\""))
        if ann is not param.empty and ann is not None:
            if usable(ann):
                for n, o in vars(self.module).items():
                    if o is ann:
                        return n
            return None
        if param.name.lower() not in CONFIG_PARAMETERS:
            return None
        configs = [n for n, o in vars(self.module).items()
                   if usable(o) and o.__module__ == self.module.__name__ and n == o.__name__
                   and (dataclasses.is_dataclass(o) or n.lower().endswith(CONFIG_SUFFIXES))]
        if not configs:
            return None
        # GPTConfig for GPT: the longest shared prefix wins; a single config class is taken as is
        return max(configs, key=lambda n: (len(os.path.commonprefix([n.lower(), model_name.lower()])), -len(n)))

    # -- 5. literal calls ----------------------------------------------------------------------
    def with_literal_call(self, name: str, cls: type) -> bool:
        """``VGG('VGG11')``: the file's own first call of the class with literal arguments."""
        call = next((c for c in self.scan.calls if c.callee == name and c.literal), None)
        if call is None:
            return False
        module = self.module
        self.add(call.text, lambda: evaluate(call.text, module), cls, guess=True, builds=cls)
        self.covered.add(cls)
        return True

    # -- what is left ---------------------------------------------------------------------------
    def unbuilt(self, name: str, cls: type) -> Unbuilt | None:
        """GL002's material for a model class nothing built, or None for a building block (used by
        another class or a factory of the file) or a class that makes no weights."""
        users = [c for c, names in self.scan.class_uses.items() if c != name and c in self.classes and name in names]
        users += [f for f, names in self.scan.function_uses.items() if f in self.factory_names and name in names]
        if users or not self.may_have_weights(name, cls):
            return None
        from .repository_calls import call_examples

        return Unbuilt(cls, definition_location(cls), required_parameters(cls) or [],
                       examples=call_examples(self.path, name, self.module.__name__))

    def may_have_weights(self, name: str, cls: type) -> bool:
        """Whether the class's body may construct a weight. Only a body whose every call is known
        to make none (weightless torch modules such as activations or dropout, torch functions,
        builtins, ``self.register_buffer``) is weightless: anything unknown may."""
        import torch.nn as nn

        for callee in self.scan.class_calls.get(name, ()):
            head, _, attr = callee.partition(".")
            obj = getattr(cls, attr.split(".")[0], None) if head == "self" and attr else resolve(self.module, callee)
            if callee == "super" or (head == "super" and attr):
                continue
            if isinstance(obj, type) and issubclass(obj, (nn.Parameter, nn.Module)):
                if (issubclass(obj, (nn.Parameter, nn.MultiheadAttention))
                        or not obj.__module__.startswith(_WEIGHTLESS_TORCH_MODULES)):
                    return True
                continue
            if getattr(nn.Module, getattr(obj, "__name__", ""), None) is not None and head == "self":
                if obj.__name__ in ("register_parameter", "add_module", "register_module"):
                    return True
                continue  # register_buffer and the like
            if (getattr(obj, "__module__", None) or "").split(".")[0] in ("builtins", "torch", "math", "numpy"):
                continue
            if obj is not None and inspect.isbuiltin(obj):
                continue
            return True  # a helper of the user's, or something not resolved
        return False


_WEIGHTLESS_TORCH_MODULES = tuple(f"torch.nn.modules.{m}" for m in (
    "activation", "dropout", "pooling", "flatten", "padding", "pixelshuffle", "upsampling", "channelshuffle",
    "distance", "loss", "container", "fold"))
# containers hold what the class body constructs, which is checked on its own
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
    close = difflib.get_close_matches(target.expr or "", names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = f"it defines {', '.join(names)}" if names else "it defines no class or function"
    return f"{target.spec}: {target.path} defines no {target.expr!r}{hint}; {listing}"
