"""Recording what initialization code does while a model is built.

Two facts feed later stages: which parameters init code touched (GL104 asks whether a layer kept
PyTorch's default init: ``rules/default_init.py``), and, on the meta device where no values exist,
the value law each init op leaves in a parameter (``initlaw.py``), which the estimator uses in
place of PyTorch's formulas.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from ..ir.source import GRADLINT_DIR

# In-place ops that mark a tensor no init had touched yet (parameters: any in-place op).
_INPLACE_INIT = frozenset({
    "normal_", "uniform_", "fill_", "zero_", "copy_", "exponential_", "geometric_", "log_normal_",
    "cauchy_", "random_", "bernoulli_", "erfinv_", "mul_", "add_", "div_", "clamp_", "set_",
    "orthogonal_", "trunc_normal_",
})
# In-place methods that change no values.
_NO_VALUE_CHANGE = frozenset({"requires_grad_", "share_memory_", "retain_grad", "detach_", "pin_memory_", "record_stream"})
# Ops whose result aliases (part of) their input.
_VIEWS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "t", "transpose", "swapaxes", "permute", "flatten", "unflatten",
    "squeeze", "unsqueeze", "expand", "expand_as", "movedim", "narrow", "select", "__getitem__", "diagonal",
    "as_strided", "unfold", "split", "chunk", "unbind", "tensor_split",
})
# nn.init functions: the arguments after the tensor, with defaults.
_INIT_ARGS = {
    "uniform_": (("a", 0.0), ("b", 1.0)),
    "normal_": (("mean", 0.0), ("std", 1.0)),
    "trunc_normal_": (("mean", 0.0), ("std", 1.0), ("a", -2.0), ("b", 2.0)),
    "constant_": (("val", None),),
    "zeros_": (), "ones_": (),
    "xavier_uniform_": (("gain", 1.0),), "xavier_normal_": (("gain", 1.0),),
    "kaiming_uniform_": (("a", 0.0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu")),
    "kaiming_normal_": (("a", 0.0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu")),
    "orthogonal_": (("gain", 1.0),),
}
# Tensor methods: the arguments after self, with defaults.
_METHOD_ARGS = {
    "normal_": (("mean", 0.0), ("std", 1.0)),
    "uniform_": (("from", 0.0), ("to", 1.0)),
    "fill_": (("value", None),),
    "zero_": (),
    "mul_": (("other", None),), "div_": (("other", None),),
    "add_": (("other", None),), "sub_": (("other", None),),
    "erfinv_": (),
    "clamp_": (("min", None), ("max", None)), "clamp_min_": (("min", None),), "clamp_max_": (("max", None),),
    "copy_": (("src", None),),
    "data=": (("src", None),),  # ``param.data = src``
}
_UNSET = object()


def _bind(spec: tuple, args: tuple, kwargs: dict) -> list[Any]:
    """The arguments after the tensor (args[0] or kwargs["tensor"])."""
    rest = args[1:] if args else ()
    return [rest[i] if i < len(rest) else kwargs.get(k, d) for i, (k, d) in enumerate(spec)]


def _number(x: Any) -> float | None:
    """A Python number (a tensor-valued argument is unknown)."""
    return float(x) if isinstance(x, (int, float)) else None


_GRADLINT = GRADLINT_DIR + os.sep


class InitRecorder:
    """A TorchFunctionMode active while the model is built: which tensors did init code touch, and
    (``laws=True``, the meta build) what value law did it leave in each?

    The law (``initlaw.Law``) follows the op sequence per parameter, through ``.data``/``detach``
    and view aliases: ``normal_``/``uniform_``/``fill_``/``zero_`` and the nn.init functions set
    it, scalar ``mul_``/``div_``/``add_``/``sub_`` transform it, ``erfinv_`` after a ``uniform_``
    inside [-1, 1] makes a truncated normal, ``clamp_`` clips it, ``copy_`` copies a tracked
    tensor's. Any other in-place op, a tensor-valued argument, a write through a partial view or a
    copy from an untracked tensor makes it unknown (None). Ops inside torch's own
    ``reset_parameters`` forget it: the default formula is right again.
    """

    def __init__(self, laws: bool = False) -> None:
        self.touched: set[int] = set()  # ids of tensors (parameters or their .data aliases)
        self.alias: dict[int, int] = {}  # id(param.data) -> id(param)
        self.partial: set[int] = set()  # aliases that view only part of their root
        self.saw_custom_init = False
        self.track = laws
        self.laws: dict[int, Any] = {}  # root id -> initlaw.Law, or None when unknown
        self._roots: dict[int, Any] = {}  # root id -> the tensor (kept: ids must not be reused)
        self._mode = None
        self._keep: list[Any] = []

    def __enter__(self) -> "InitRecorder":
        import torch
        import torch.nn.init as tinit

        self._torch_dir = os.path.dirname(torch.__file__) + os.sep
        self._modules_dir = os.path.join(self._torch_dir, "nn", "modules") + os.sep
        self._init_file = tinit.__file__
        self._tensor, self._parameter = torch.Tensor, torch.nn.Parameter
        # nn.init functions that return at once on the meta device (no op to see): they are
        # recognised by their frame when they ask ``tensor.is_meta``.
        self._meta_noops = {}
        for fname, code_of in (("trunc_normal_", "_no_grad_trunc_normal_"), ("orthogonal_", "orthogonal_")):
            fn = getattr(tinit, code_of, None)
            if fn is not None and hasattr(fn, "__code__"):
                self._meta_noops[fn.__code__] = fname
        self._mode = _recording_mode(self)
        self._mode.__enter__()
        return self

    # -- what the mode sees ----------------------------------------------------------------
    def on_torch_function(self, func: Any, args: tuple, kwargs: dict, out: Any, caller: Any) -> None:
        """Book one torch function call (``caller``: the frame that made it)."""
        Tensor = self._tensor
        name = getattr(func, "__name__", "")
        if name == "__get__":
            if not args:
                pass
            elif isinstance(out, Tensor):
                self._alias(args[0], out, True)  # ``param.data`` / ``param.T``: remember the alias
            elif out is True and self.track and self._meta_noops:
                fname = self._meta_noops.get(caller.f_code)
                if fname is not None and caller.f_locals.get("tensor") is args[0]:
                    loc = caller.f_locals
                    kw = {k: loc[k] for k, _ in _INIT_ARGS[fname] if k in loc}
                    self._record(fname, True, args[0], (), kw, caller)
            return
        if name == "__set__":
            # ``param.data = t``: t's law when it is tracked, else unknown
            if getattr(getattr(func, "__self__", None), "__name__", None) == "data" and len(args) > 1 \
                    and isinstance(args[0], Tensor):
                self._record("data=", False, args[0], args, {}, caller)
            return
        if name == "detach" or name in _VIEWS:
            if args and isinstance(args[0], Tensor):
                self._alias(args[0], out, name == "detach")
            return
        is_init_fn = getattr(func, "__module__", None) == "torch.nn.init"
        if is_init_fn or name == "__setitem__" or (
                name.endswith("_") and not name.startswith("_") and name not in _NO_VALUE_CHANGE):
            target = args[0] if args and isinstance(args[0], Tensor) else kwargs.get("tensor")
            if isinstance(target, Tensor):
                self._record(name, is_init_fn, target, args, kwargs, caller)
        elif "out" in kwargs and isinstance(kwargs["out"], Tensor):
            self._record(name, False, kwargs["out"], (), {}, caller)

    def _caller_context(self, f: Any) -> tuple[bool, str]:
        """From the frame that called the op: (inside torch's default init?, the nn.init function)."""
        via = ""
        while f is not None:
            code = f.f_code
            fn = code.co_filename
            if fn == self._init_file:
                if not code.co_name.startswith("_"):
                    via = code.co_name
            elif fn.startswith(self._modules_dir) and code.co_name in _RESETS:
                return True, ""
            elif not fn.startswith(self._torch_dir) and not fn.startswith(_GRADLINT):
                return False, via
            f = f.f_back
        return False, via

    def _root_of(self, t: Any) -> tuple[int, bool] | None:
        """(root id, partial view?) of a parameter, an alias of one or a tracked tensor."""
        tid = id(t)
        root = self.alias.get(tid)
        if root is not None:
            return root, tid in self.partial
        if isinstance(t, self._parameter) or tid in self.laws:
            return tid, False
        return None

    def _alias(self, src: Any, out: Any, always: bool = False) -> None:
        r = self._root_of(src)
        if r is None:
            if not always:
                return
            r = (id(src), False)
        if self.track and r[0] == id(src):
            self._roots.setdefault(r[0], src)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for o in outs:
            if isinstance(o, self._tensor) and o is not src:
                self.alias[id(o)] = r[0]
                if r[1] or len(outs) > 1 or o.numel() != src.numel():
                    self.partial.add(id(o))
                self._keep.append(o)

    def _record(self, name: str, is_init_fn: bool, target: Any, args: tuple, kwargs: dict, caller: Any) -> None:
        r = self._root_of(target)
        if r is None:
            # a tensor no init touched yet: a parameter's future source (copy_), or a buffer
            if not is_init_fn and name not in _INPLACE_INIT:
                return
            r = (id(target), False)
        root, partial = r
        default, via = self._caller_context(caller)
        if default:
            if self.track:
                self.laws.pop(root, None)
            return
        self.touched.add(root)
        self.saw_custom_init = True
        if not self.track:
            return
        if root == id(target):
            self._roots.setdefault(root, target)
        if partial:
            self.laws[root] = None
            return
        try:
            law = (init_function_law(name, target, args, kwargs) if is_init_fn
                   else method_law(name, args, kwargs, self.laws.get(root, _UNSET), via, self._source_law))
        except Exception:  # noqa: BLE001 - odd arguments: unknown, never a failed build
            law = None
        self.laws[root] = law

    def _source_law(self, t: Any) -> Any:
        """The law a ``copy_`` source carries: a tracked tensor's whole law, else unknown."""
        src = self._root_of(t) if isinstance(t, self._tensor) else None
        return self.laws.get(src[0]) if src is not None and not src[1] else None

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)
        self._keep.clear()

    def touched_names(self, model: Any) -> set[str]:
        return {name for name, p in model.named_parameters() if id(p) in self.touched}

    def laws_by_name(self, model: Any) -> dict[str, Any]:
        """Parameter name -> the law init code left (initlaw.Law), or None where unknown; parameters
        no init code touched (or whose last init was torch's default) are absent."""
        return {name: self.laws[id(p)] for name, p in model.named_parameters()
                if id(p) in self.laws and self._roots.get(id(p)) is p}


_RESETS = ("reset_parameters", "_reset_parameters", "__init__")


# In-place random fills: on a meta tensor they write nothing and return the tensor. torch runs
# them there through Python references that import torch._dynamo on first use.
_RANDOM_FILLS = frozenset({"normal_", "uniform_", "random_", "exponential_", "geometric_", "cauchy_",
                           "log_normal_", "bernoulli_"})


def _meta_fill_target(func: Any, args: tuple, kwargs: dict) -> Any:
    """The meta tensor a random fill (``t.normal_()``, ``nn.init.normal_(tensor=t)``) would write to."""
    if getattr(func, "__name__", "") not in _RANDOM_FILLS:
        return None
    t = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
    return t if getattr(t, "is_meta", False) is True else None


def _recording_mode(rec: InitRecorder) -> Any:
    """A TorchFunctionMode that runs every torch function and tells ``rec`` about it."""
    from torch.overrides import TorchFunctionMode

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            filled = _meta_fill_target(func, args, kwargs)
            if filled is not None:
                out = filled  # writes nothing on meta; skipping it also skips loading torch._dynamo (~2 s)
            else:
                out = func(*args, **kwargs)
            try:
                rec.on_torch_function(func, args, kwargs, out, sys._getframe(1))
            except Exception:  # noqa: BLE001 - bookkeeping must never break the user's build
                pass
            return out

    return Mode()


def method_law(name: str, args: tuple, kwargs: dict, cur: Any, via: str, source_law: Any) -> Any:
    """The law a tensor method (``normal_``, ``mul_``, ``copy_``, ...) leaves, given the current
    law ``cur`` (``_UNSET``: none recorded, so torch's default) and ``source_law(t)`` for copies."""
    from . import initlaw as L

    spec = _METHOD_ARGS.get(name)
    if spec is None:
        return None
    a = _bind(spec, args, kwargs)
    if name == "normal_":
        mean, std = _number(a[0]), _number(a[1])
        return None if mean is None or std is None else L.normal(mean, std, via=via)
    if name == "uniform_":
        lo, hi = _number(a[0]), _number(a[1])
        return None if lo is None or hi is None else L.uniform(lo, hi, via)
    if name == "fill_":
        v = _number(a[0])
        return None if v is None else L.constant(v, via)
    if name == "zero_":
        return L.constant(0.0, via)
    if name in ("copy_", "data="):
        return source_law(a[0])
    if cur is _UNSET or cur is None:  # a change to the default or an unknown law
        return None
    if name == "erfinv_":
        return L.erfinv(cur)
    if name in ("clamp_", "clamp_min_", "clamp_max_"):
        lo = a[0] if name != "clamp_max_" else None
        hi = a[1] if name == "clamp_" else (a[0] if name == "clamp_max_" else None)
        if (lo is not None and _number(lo) is None) or (hi is not None and _number(hi) is None):
            return None
        return L.clamp(cur, lo, hi)
    v = _number(a[0])
    if v is None or kwargs.get("rounding_mode") is not None:
        return None
    if name == "mul_":
        return L.affine(cur, v)
    if name == "div_":
        return L.affine(cur, 1.0 / v) if v else None
    alpha = _number(kwargs.get("alpha", 1))
    if alpha is None:
        return None
    return L.affine(cur, 1.0, v * alpha if name == "add_" else -v * alpha)


def init_function_law(name: str, target: Any, args: tuple, kwargs: dict) -> Any:
    """The law an ``nn.init`` function leaves in ``target``."""
    import torch.nn.init as tinit

    from . import initlaw as L

    spec = _INIT_ARGS.get(name)
    if spec is None:
        return None
    a = _bind(spec, args, kwargs)
    if name in ("uniform_", "normal_", "trunc_normal_", "constant_", "xavier_uniform_", "xavier_normal_",
                "orthogonal_") and any(_number(x) is None for x in a):
        return None
    if name == "uniform_":
        return L.uniform(a[0], a[1])
    if name == "normal_":
        return L.normal(a[0], a[1])
    if name == "trunc_normal_":
        return L.normal(a[0], a[1], a[2], a[3])
    if name in ("constant_", "zeros_", "ones_"):
        return L.constant(a[0] if name == "constant_" else float(name == "ones_"))
    if name == "orthogonal_":
        rows, n = target.shape[0], target.numel()
        g = abs(a[0])
        # (semi-)orthogonal rows or columns: the squares sum to min(rows, cols)
        return L.Law("moments", 0.0, g * g / max(rows, n // max(rows, 1)), -g, g, via=name)
    fan_in, fan_out = tinit._calculate_fan_in_and_fan_out(target)
    if name.startswith("xavier"):
        std = a[0] * math.sqrt(2.0 / float(fan_in + fan_out))
    else:
        fan = fan_in if a[1] == "fan_in" else fan_out
        std = tinit.calculate_gain(a[2], a[0]) / math.sqrt(fan)
    if name.endswith("uniform_"):
        return L.uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, name)
    return L.normal(0.0, std, via=name)
