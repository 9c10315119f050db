"""Guessing a model's example inputs when neither the file nor the configuration gives them.

The first weight layer the forward *calls* decides, not the first one registered (an
``nn.Transformer`` registered before the ``Embedding`` that feeds it): torch.fx traces the
forward without any shapes to find it, and when fx cannot trace the code, a first guess is run
with pre-hooks that see which weight layer is called first. What stands between the input and
that layer counts too: an einops ``Rearrange`` in front of a ``Linear`` means an image cut into
patches. Every guess is checked by running the forward once on the meta device (no compute, no
memory) before it is used. For an image model the side is searched for: a CIFAR net's
``flatten`` wants 32, Atari's Nature CNN 84; the first ``Linear`` after the convolutions names
the features it wants, and a bisection over the side (the flattened size grows with it) finds
the side that gives them, the same on meta as on the CPU.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..load.build import set_training
from .example import DEFAULT_BATCH, DEFAULT_SEQUENCE, InputPlan, TensorSpec

# Image sides worth trying after the default and the solved one: CIFAR's 32, MNIST's 28, Atari's 84,
# Inception's 299, and a few more.
SIDES = (32, 28, 64, 84, 96, 128, 256, 299, 512)
# Names of a forward's extra inputs that are a diffusion time step (one number per sample).
TIME_INPUTS = re.compile(r"^(t|ts|time|times|timestep|timesteps|time_step|step|steps|noise_level|sigma|sigmas)$")
# Names of a forward's extra inputs that are a recurrent state (``forward(input, hidden)``).
STATE_INPUTS = re.compile(r"^(hidden|hiddens|hidden_state|hx|h|h0|hc|state|states|memory|mems)$")
MAX_PROBES = 24
# Errors no other input shape would change: code that needs real values (``.item()``, ``float(x)``
# on meta tensors) or an op the meta device lacks. Any other error is worth another guess.
_NOT_THE_INPUT = re.compile(r"meta|item\(\)|data.dependent|NotImplementedError|Cannot copy out", re.IGNORECASE)


@dataclass
class Probe:
    """What one forward on a candidate input showed."""

    ok: bool = False
    error: str = ""
    first_weight: tuple[str, Any] | None = None  # (name, module) of the first weight layer called
    before: list[Any] = field(default_factory=list)  # leaf modules called before it
    linear: tuple[int, int] | None = None  # (features given, in_features) at the first Linear after it


class _Stop(BaseException):
    """Ends a probe at the first Linear (the bisection needs only what reaches it)."""


def _weight_kind(module: Any) -> bool:
    """A weight layer, for deciding inputs: subclasses of the torch layers count even when they hold
    children (efficientnet-pytorch's ``Conv2dStaticSamePadding`` pads with a submodule)."""
    import torch.nn as nn

    from ..ir import graph as g
    from .kinds import classify_module

    if isinstance(module, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding, nn.EmbeddingBag,
                           nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)):
        return True
    c = classify_module(module)
    return c is not None and c.kind in g.WEIGHT_KINDS


def _device_of(model: Any) -> str:
    p = next(iter(model.parameters()), None)
    return p.device.type if p is not None else "cpu"


def registration_first(model: Any) -> tuple[str | None, Any]:
    """The first registered module of a weight kind (the fallback for the first one called)."""
    for name, m in model.named_modules():
        if _weight_kind(m):
            return name, m
    return None, None


def traced_first(model: Any) -> tuple[tuple[str, Any], list[Any], int] | None:
    """(first weight layer called, the leaf modules on its input path, the index of the forward
    input that feeds it), from an fx trace of the forward; None when fx cannot trace it."""
    import inspect

    import torch.fx as fx

    from .contexts import quiet_torch
    from .kinds import classify_module

    class OrderTracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            return _weight_kind(m) or classify_module(m) is not None or next(iter(m.children()), None) is None

    try:
        sig = inspect.signature(model.forward)
        concrete = {n: p.default for n, p in sig.parameters.items()
                    if p.default is not p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        from ..load.importer import user_stdout_to_stderr

        with quiet_torch(), user_stdout_to_stderr():
            graph = OrderTracer().trace(model, concrete_args=concrete or None)
    except Exception:  # noqa: BLE001 - code fx cannot trace: the probes decide instead
        return None
    modules = dict(model.named_modules())
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for node in graph.nodes:
        if node.op != "call_module" or not _weight_kind(modules.get(node.target)):
            continue
        ancestors, stack = [], list(node.all_input_nodes)
        seen: set[Any] = set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            ancestors.append(n)
            stack += n.all_input_nodes
        before = [modules[n.target] for n in reversed(ancestors) if n.op == "call_module" and n.target in modules]
        feeds = [i for i, p in enumerate(placeholders) if p in seen]
        return (node.target, modules[node.target]), before, feeds[0] if feeds else 0
    return None


@contextlib.contextmanager
def _probing(model: Any) -> Iterator[None]:
    """No gradients; on the meta device, libraries skip value checks (as under a compiler); on
    the CPU, eval mode so that BatchNorm's running statistics are left as they are."""
    import torch

    from ..load.importer import user_stdout_to_stderr
    from .contexts import quiet_torch, values_unknown_like_a_compiler

    meta = _device_of(model) == "meta"
    training = {m: m.training for m in model.modules()}
    if not meta:
        set_training(model, False)
    try:
        with torch.no_grad(), quiet_torch(), user_stdout_to_stderr(), \
                (values_unknown_like_a_compiler() if meta else contextlib.nullcontext()):
            yield
    finally:
        for m, t in training.items():
            m.training = t


def probe(model: Any, plan: InputPlan, stop_at_linear: bool = False, stop_at_first_weight: bool = False) -> Probe:
    """Run the forward once on ``plan`` (on the model's device) and see what happens; stopped at
    the first Linear after the first weight layer, or at the first weight layer itself."""
    import torch.nn as nn
    from torch.nn.modules.module import register_module_forward_pre_hook

    from ..ir.errors import one_line
    from ..load.limits import PASS_THROUGH
    from .example import forward_kwargs
    from .tensors import tensors_in

    result = Probe()
    names = {id(m): n for n, m in model.named_modules()}

    def pre_hook(module: Any, inputs: Any) -> None:
        if id(module) not in names:
            return
        if result.first_weight is None:
            if _weight_kind(module):
                result.first_weight = (names[id(module)], module)
                if stop_at_first_weight:
                    raise _Stop
            elif next(iter(module.children()), None) is None:
                result.before.append(module)
        elif isinstance(module, nn.Linear) and result.linear is None and module is not result.first_weight[1]:
            x = next(iter(tensors_in(inputs)), None)
            result.linear = (int(x.shape[-1]) if x is not None and x.dim() else -1, module.in_features)
            if stop_at_linear:
                raise _Stop

    example = plan.make(_device_of(model))
    handle = register_module_forward_pre_hook(pre_hook)
    try:
        with _probing(model), _einops_calls(result):
            model(*example.args, **forward_kwargs(model, example))
        result.ok = True
    except _Stop:
        pass
    except PASS_THROUGH:
        raise
    except BaseException as e:  # noqa: BLE001 - the model's own error: this guess is wrong
        result.error = one_line(e)
    finally:
        handle.remove()
    return result


@contextlib.contextmanager
def _einops_calls(result: Probe) -> Iterator[None]:
    """Functional ``einops.rearrange(x, pattern, p1=...)`` calls before the first weight layer, kept
    in ``result.before`` like a ``Rearrange`` module (einops routes them through ``einops.einops.reduce``)."""
    import sys
    import types

    einops = sys.modules.get("einops.einops")
    original = getattr(einops, "reduce", None)
    if original is None:
        yield
        return

    def recording(tensor: Any, pattern: str, reduction: Any, **axes_lengths: Any) -> Any:
        if result.first_weight is None and isinstance(pattern, str) and reduction == "rearrange":
            result.before.append(types.SimpleNamespace(pattern=pattern, axes_lengths=axes_lengths))
        return original(tensor, pattern, reduction, **axes_lengths)

    einops.reduce = recording
    try:
        yield
    finally:
        einops.reduce = original


def required_inputs(model: Any) -> list[str]:
    """The forward's parameters without defaults (``forward(y, y_hat)``: two inputs)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return ["x"]
    names = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names or ["x"]


def infer_plan(model: Any, batch: int = DEFAULT_BATCH, side: int | None = None) -> InputPlan | None:
    """The example inputs to use for ``model`` (on meta or CPU), or None when nothing can be
    guessed (no weight layer). ``side``: an image side chosen by a later retry (no search).

    Which weight layer comes first: a forward on the guess from the first *registered* one,
    stopped as soon as a weight layer is called, says (cheap: nothing past that layer runs); when
    that guess fails before any weight layer, fx traces the forward, which needs no shapes."""
    name, module = registration_first(model)
    if module is None:
        return None
    inputs = required_inputs(model)
    first, before, slot = (name, module), [], 0
    if side is None:
        guess = next(candidates(model, first, before, slot, inputs, batch, None, {}), None)
        reached = probe(model, guess, stop_at_first_weight=True) if guess is not None else Probe()
        if reached.first_weight is not None:
            first, before = reached.first_weight, reached.before
        else:
            traced = traced_first(model)
            if traced is not None:
                first, before, slot = traced
            else:
                before = reached.before  # an einops pattern the input met before failing
    seen: dict = {}  # what the first guess's probe saw, for the guesses after it
    plans = candidates(model, first, before, slot, inputs, batch, side, seen)
    primary = next(plans, None)
    if primary is None or side is not None:
        return primary
    if len(inputs) == 1 and not _uncertain(first[1], before) and reached.first_weight is not None:
        return primary  # the first layer called names its input exactly (a Linear's features, a vocabulary)
    first_try = probe(model, primary)
    seen["linear"] = first_try.linear
    if first_try.ok or _NOT_THE_INPUT.search(first_try.error):
        return primary  # it runs, or fails for a reason no other input shape would change
    if first_try.first_weight is not None and first_try.first_weight[1] is not first[1]:
        plans = _chain(candidates(model, first_try.first_weight, first_try.before, slot, inputs, batch, side), plans)
    rank = unpacked_rank(first_try.error) if first_try.first_weight is None else None
    if rank is not None:
        # ``b, c, t = x.shape`` before any layer: the forward says how many dimensions it wants
        plans = _chain(other_rank(primary, rank, slot), plans)
    plausible = None  # got past the first weight layer, then needed real values meta tensors lack
    for plan in itertools.islice(plans, MAX_PROBES):
        if plan == primary:
            continue
        tried = probe(model, plan)
        if tried.ok:
            return plan
        if plausible is None and tried.first_weight is not None and _NOT_THE_INPUT.search(tried.error):
            plausible = plan
    return plausible or primary


_UNPACK = re.compile(r"(?:too many|not enough) values to unpack \(expected (\d+)")


def unpacked_rank(error: str) -> int | None:
    """The number of dimensions ``b, c, t = x.shape`` asked for, from its error message."""
    m = _UNPACK.search(error or "")
    return int(m.group(1)) if m else None


def other_rank(plan: InputPlan, rank: int, slot: int) -> Iterator[InputPlan]:
    """``plan`` with its main input given ``rank`` dimensions: an image becomes a signal
    ``(batch, channels, length)`` for a few lengths, features gain a sequence axis."""
    spec = plan.args[min(slot, len(plan.args) - 1)]
    shape = spec.shape
    if rank < 2 or rank == len(shape):
        return
    if rank < len(shape):
        options = [shape[: rank - 1] + (n,) for n in (128, 1024, 8192, 16000)]
    else:
        options = [shape[:1] + (DEFAULT_SEQUENCE,) * (rank - len(shape)) + shape[1:]]
    for new in options:
        changed = TensorSpec(new, spec.dtype, spec.high)
        args = tuple(changed if a == spec else a for a in plan.args)
        yield InputPlan(args, plan.source + f", {rank}-d as the forward unpacks it")


def _uncertain(first: Any, before: list[Any]) -> bool:
    """A guess worth checking by running the forward: an image side, or a pattern in front."""
    import torch.nn as nn

    return isinstance(first, nn.modules.conv._ConvNd) or any(hasattr(m, "pattern") for m in before)


def _chain(*iterators: Iterator[InputPlan]) -> Iterator[InputPlan]:
    for it in iterators:
        yield from it


def candidates(model: Any, first: tuple[str, Any], before: list[Any], slot: int, inputs: list[str], batch: int,
               side: int | None, seen: dict | None = None) -> Iterator[InputPlan]:
    """Plans to try, the most likely first: the input the first weight layer takes, at the forward
    input that feeds it, with the other required inputs filled in."""
    name, module = first
    src = f"inferred from {name} ({type(module).__name__})"
    pairs = 1 + sum(1 for i, n in enumerate(inputs)
                    if i != slot and not TIME_INPUTS.match(n.lower()) and not STATE_INPUTS.match(n.lower()))
    for spec, where in first_inputs(model, module, before, batch, side, {} if seen is None else seen):
        label = src + (f", {where}" if where else "")
        side_of = spec.shape[-1] if len(spec.shape) == 4 else None
        variants = [spec]
        if pairs > 1 and len(spec.shape) >= 3 and spec.shape[1] % pairs == 0:
            # forward(img_a, img_b) concatenating its inputs' channels before the first conv
            variants.append(TensorSpec((spec.shape[0], spec.shape[1] // pairs, *spec.shape[2:]), spec.dtype, spec.high))
        for variant in variants:
            for others in _other_inputs(inputs, slot, variant, batch):
                args = list(others)
                args.insert(min(slot, len(args)), variant)
                yield InputPlan(tuple(args), label, side_of)


def _other_inputs(inputs: list[str], slot: int, spec: TensorSpec, batch: int) -> Iterator[list[TensorSpec]]:
    """The forward's other required inputs: a time step for ``t``/``timesteps``-like names, else
    the same as the first (``forward(y, y_hat)``); then the other way round."""
    others = [n for i, n in enumerate(inputs) if i != slot]
    if not others:
        yield []
        return
    time_long = TensorSpec((batch,), "int64", high=1000)
    time_float = TensorSpec((batch,), "float32")

    def fill(n: str, time: TensorSpec) -> TensorSpec | None:
        if STATE_INPUTS.match(n.lower()):
            return None  # a recurrent state: None starts from zeros, as nn.RNN/LSTM/GRU take it
        return time if TIME_INPUTS.match(n.lower()) else spec

    yield [fill(n, time_long) for n in others]
    yield [fill(n, time_float) for n in others]
    yield [spec for _ in others]


def first_inputs(model: Any, first: Any, before: list[Any], batch: int, side: int | None, seen: dict
                 ) -> Iterator[tuple[TensorSpec, str]]:
    """The input ``first`` (the first weight layer called) takes, best guess first."""
    import torch.nn as nn

    T = DEFAULT_SEQUENCE
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        yield TensorSpec((batch, T), "int64", high=first.num_embeddings), "token ids"
        return
    if isinstance(first, nn.Linear):
        patches = [m for m in before if isinstance(getattr(m, "pattern", None), str) and "->" in m.pattern]
        if patches:
            shape = rearranged_input(patches[0], first.in_features, model, batch)
            if shape is not None:
                yield TensorSpec(shape), f"through {type(patches[0]).__name__}('{patches[0].pattern}')"
        yield TensorSpec((batch, first.in_features)), ""
        return
    if isinstance(first, nn.Bilinear):
        yield TensorSpec((batch, first.in1_features)), ""
        return
    if isinstance(first, nn.modules.conv._ConvNd):
        yield from image_inputs(model, first, batch, side, seen)
        return
    if isinstance(first, nn.RNNBase):
        shape = (batch, T, first.input_size) if first.batch_first else (T, batch, first.input_size)
        yield TensorSpec(shape), ""
        return
    if isinstance(first, nn.RNNCellBase):
        yield TensorSpec((batch, first.input_size)), ""
        return
    if isinstance(first, nn.MultiheadAttention):
        shape = (batch, T, first.embed_dim) if first.batch_first else (T, batch, first.embed_dim)
        yield TensorSpec(shape), ""
        return


def _conv_dims(conv: Any) -> int:
    import torch.nn as nn

    dims = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3, nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2,
            nn.ConvTranspose3d: 3}
    return next((d for cls, d in dims.items() if isinstance(conv, cls)), len(conv.kernel_size))


def _image(batch: int, channels: int, nd: int, n: int) -> TensorSpec:
    return TensorSpec((batch, channels, *([n] * nd)))


def image_inputs(model: Any, conv: Any, batch: int, side: int | None, seen: dict
                 ) -> Iterator[tuple[TensorSpec, str]]:
    """An image (or a 1-d / 3-d signal) for a model whose first weight layer is a convolution:
    the default side, then the side that gives the first Linear the features it wants, then
    common sides. ``seen["linear"]``: (features given, wanted) at the first Linear when the
    default side was probed."""
    nd = _conv_dims(conv)
    channels = conv.in_channels
    if side is not None and nd == 2:
        yield _image(batch, channels, nd, side), ""
        return
    default = {1: 128, 2: 224 if channels == 3 else 32, 3: 16}[nd]
    yield _image(batch, channels, nd, default), ""
    if nd != 2:
        for n in ((64, 256, 1024, 16000) if nd == 1 else (8, 32)):
            yield _image(batch, channels, nd, n), ""
        return
    solved = solve_side(model, channels, batch, default, seen.get("linear"))
    if solved is not None and solved != default:
        yield _image(batch, channels, nd, solved), "the side its first Linear's in_features asks for"
    for n in SIDES:
        if n not in (default, solved):
            yield _image(batch, channels, nd, n), ""


# Usual image sides by channel count, most likely first: MNIST, CIFAR/ImageNet, Atari frame stacks.
USUAL_SIDES = {1: (28, 32, 64), 3: (32, 224, 64, 96, 128, 256, 299, 512, 28), 4: (84, 64, 96)}


def solve_side(model: Any, channels: int, batch: int, default: int,
               seen: tuple[int, int] | None = None) -> int | None:
    """An image side at which the first Linear after the convolutions gets exactly the features it
    wants, or None (no such Linear, or no side fits). The flattened size grows with the side
    squared, so the features at the default side give an estimate (``side * sqrt(wanted /
    given)``: 32 at once for a CIFAR net); the usual sides near it are tried first, then a
    bisection around it (the flattened size never shrinks as the image grows). ``seen``: (given,
    wanted) at the default side, when a probe there already saw them."""
    found: dict[int, tuple[int, int] | None] = {default: seen} if seen else {}

    def linear_at(n: int) -> tuple[int, int] | None:
        if n not in found:
            r = probe(model, InputPlan((_image(batch, channels, 2, n),), ""), stop_at_linear=True)
            found[n] = r.linear
        return found[n]

    def gap(n: int) -> int | None:
        seen_at = linear_at(n)
        return None if seen_at is None else seen_at[0] - seen_at[1]

    base = linear_at(default)
    if base is None or base[0] <= 0 or base[1] <= 0:
        return None
    if base[0] == base[1]:
        return default
    estimate = max(8, round(default * math.sqrt(base[1] / base[0])))
    usual = USUAL_SIDES.get(channels, ()) + SIDES
    near = sorted({n for n in usual if 0.7 * estimate <= n <= 1.4 * estimate},
                  key=lambda n: (abs(math.log(n / estimate)), usual.index(n)))
    for n in near + [estimate]:
        if gap(n) == 0:
            return n
    lo, hi = max(8, estimate // 2), min(1024, 2 * estimate + 16)
    top = gap(hi)
    if top is None or top < 0:
        return None
    while lo < hi:  # invariant: gap(hi) >= 0; below lo: too small, or no Linear reached
        mid = (lo + hi) // 2
        g = gap(mid)
        if g is not None and g >= 0:
            hi = mid
        else:
            lo = mid + 1
    return hi if gap(hi) == 0 else None


def rearranged_input(module: Any, features: int, model: Any, batch: int) -> tuple[int, ...] | None:
    """The input shape an einops pattern (``b c (h p1) (w p2) -> b (h w) (p1 p2 c)``) needs for its
    last output group to hold ``features`` (the Linear after it). The patch grid comes from a
    position table of the model when one has as many rows as patches (plus class tokens), else 8 x 8."""
    left, _, right = module.pattern.partition("->")
    lgroups, rgroups = _groups(left), _groups(right)
    if lgroups is None or rgroups is None or not rgroups:
        return None
    known = {k: int(v) for k, v in dict(getattr(module, "axes_lengths", {}) or {}).items()}
    last = rgroups[-1]
    unknown = [a for a in last if a not in known]
    if len(unknown) != 1:
        return None
    rest = math.prod(known[a] for a in last if a in known)
    if rest <= 0 or features % rest:
        return None
    known[unknown[0]] = features // rest
    batch_axis = lgroups[0][0] if len(lgroups[0]) == 1 else None
    if batch_axis is not None:
        known[batch_axis] = batch
    grid = [a for g in lgroups for a in g if a not in known]
    if grid:
        tokens = _position_rows(model)
        per = next((round(tokens ** (1 / len(grid))) for _ in [0] if tokens), 8)
        if tokens and per ** len(grid) != tokens:
            per = 8
        for a in grid:
            known[a] = per
    return tuple(math.prod(known[a] for a in g) for g in lgroups)


def _groups(side: str) -> list[list[str]] | None:
    """``b c (h p1) (w p2)`` -> [['b'], ['c'], ['h', 'p1'], ['w', 'p2']]; None for ellipses or literals."""
    out: list[list[str]] = []
    for m in re.finditer(r"\(([^)]*)\)|(\S+)", side.strip()):
        names = m.group(1).split() if m.group(1) is not None else [m.group(2)]
        if any(not n.isidentifier() for n in names):
            return None
        out.append(names)
    return out


def _position_rows(model: Any) -> int | None:
    """Patches a ViT-style position table is made for: rows of a ``(1, N, dim)`` parameter whose
    name says position, minus a class token when N - 1 is a square."""
    for name, p in model.named_parameters():
        if "pos" in name.lower() and p.dim() == 3 and p.shape[0] == 1:
            n = int(p.shape[1])
            for tokens in (n, n - 1, n - 2):
                if tokens > 0 and math.isqrt(tokens) ** 2 == tokens:
                    return tokens
    return None
