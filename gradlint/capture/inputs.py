"""Example inputs: the file's ``example_inputs()``, a configured shape, or inferred from layer one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import StageError, stage_error

DEFAULT_BATCH = 8
DEFAULT_SEQUENCE = 16


@dataclass
class ExampleInputs:
    args: tuple
    kwargs: dict
    source: str  # "example_inputs()", "--input-shape", "inferred from <layer>"

    def to(self, device: str) -> "ExampleInputs":
        import torch

        def move(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                return x.to(device)
            if isinstance(x, (tuple, list)):
                return type(x)(move(v) for v in x)
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            return x

        return ExampleInputs(move(self.args), move(self.kwargs), self.source)


def normalize(value: Any, source: str) -> ExampleInputs:
    """``example_inputs()`` may return a tensor, a tuple of positional inputs, a dict of keyword
    inputs, or ``(args_tuple, kwargs_dict)``."""
    import torch

    if isinstance(value, torch.Tensor):
        return ExampleInputs((value,), {}, source)
    if isinstance(value, dict):
        return ExampleInputs((), dict(value), source)
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (tuple, list))
            and isinstance(value[1], dict)):
        return ExampleInputs(tuple(value[0]), dict(value[1]), source)
    if isinstance(value, (tuple, list)):
        return ExampleInputs(tuple(value), {}, source)
    raise TypeError(f"example_inputs() returned {type(value).__name__}; return a tensor, a tuple or a dict")


def from_function(fn: Callable[[], Any], device: str) -> ExampleInputs:
    import torch

    try:
        with torch.device(device):
            value = fn()
        return normalize(value, "example_inputs()").to(device)
    except Exception as e:  # noqa: BLE001 - user code
        raise stage_error("capture", e, hint="example_inputs() must run without arguments") from None


def from_shape(shape: list[int] | tuple[int, ...], model: Any, device: str) -> ExampleInputs:
    import torch

    _, first = first_weight_module(model)
    if isinstance(first, torch.nn.Embedding):
        return ExampleInputs((torch.randint(0, first.num_embeddings, tuple(shape), device=device),), {}, "input-shape")
    return ExampleInputs((torch.randn(*shape, device=device),), {}, "input-shape")


def first_weight_module(model: Any) -> tuple[str | None, Any]:
    """The first registered module of a weight kind (usually the first one called)."""
    from .. import graph as g
    from .kinds import classify_module

    for name, m in model.named_modules():
        c = classify_module(m)
        if c is not None and c.kind in g.WEIGHT_KINDS:
            return name, m
    return None, None


def infer(model: Any, device: str, batch: int = DEFAULT_BATCH) -> ExampleInputs:
    """Guess inputs from the first weight layer registered (usually the first one called)."""
    import torch
    import torch.nn as nn

    name, first = first_weight_module(model)
    if first is None:
        raise StageError("capture", "cannot infer an input shape: the model has no weight layer",
                         hint="define example_inputs() in the file or pass --input-shape")
    src = f"inferred from {name} ({type(first).__name__})"
    T = DEFAULT_SEQUENCE
    if isinstance(first, nn.Embedding):
        return ExampleInputs((torch.randint(0, first.num_embeddings, (batch, T), device=device),), {}, src)
    if isinstance(first, nn.EmbeddingBag):
        return ExampleInputs((torch.randint(0, first.num_embeddings, (batch, T), device=device),), {}, src)
    if isinstance(first, nn.Linear):
        return ExampleInputs((torch.randn(batch, first.in_features, device=device),), {}, src)
    if isinstance(first, nn.Bilinear):
        return ExampleInputs((torch.randn(batch, first.in1_features, device=device),
                              torch.randn(batch, first.in2_features, device=device)), {}, src)
    if isinstance(first, nn.modules.conv._ConvNd):
        dims = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3, nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2,
                nn.ConvTranspose3d: 3}
        nd = next((d for cls, d in dims.items() if isinstance(first, cls)), len(first.kernel_size))
        side = {1: 128, 2: 224 if first.in_channels == 3 else 32, 3: 16}[nd]
        return ExampleInputs((torch.randn(batch, first.in_channels, *([side] * nd), device=device),), {}, src)
    if isinstance(first, nn.RNNBase):
        shape = (batch, T, first.input_size) if first.batch_first else (T, batch, first.input_size)
        return ExampleInputs((torch.randn(*shape, device=device),), {}, src)
    if isinstance(first, nn.RNNCellBase):
        return ExampleInputs((torch.randn(batch, first.input_size, device=device),), {}, src)
    if isinstance(first, nn.MultiheadAttention):
        shape = (batch, T, first.embed_dim) if first.batch_first else (T, batch, first.embed_dim)
        x = torch.randn(*shape, device=device)
        # An MHA model takes (query, key, value); a model built around one (an encoder) takes x.
        return ExampleInputs((x, x, x) if model is first else (x,), {}, src)
    raise StageError("capture", f"cannot infer an input shape from {name} ({type(first).__name__})",
                     hint="define example_inputs() in the file or pass --input-shape")


def output_tensors(output: Any) -> list:
    """Every floating tensor in a model's output: tensors, tuples, dicts, ModelOutput, dataclasses."""
    import torch

    found: list = []

    def walk(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            if o.is_floating_point():
                found.append(o)
        elif isinstance(o, (tuple, list)):
            for v in o:
                walk(v)
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif hasattr(o, "to_tuple") and callable(o.to_tuple):
            walk(o.to_tuple())

    walk(output)
    return found


def flattening_wrapper(model: Any) -> Any:
    """A module returning the model's floating outputs as a flat tuple (for torch.export, which
    rejects outputs such as Hugging Face's DynamicCache). Its child is named ``m``."""
    import torch.nn as nn

    class OutputFlattener(nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.m = inner

        def forward(self, *args: Any, **kwargs: Any) -> tuple:
            return tuple(output_tensors(self.m(*args, **kwargs)))

    return OutputFlattener(model)


def forward_kwargs(model: Any, inputs: ExampleInputs) -> dict:
    """Hugging Face models: ask for no cache, so no cache object is built."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return dict(inputs.kwargs)
    kwargs = dict(inputs.kwargs)
    if "use_cache" in params and "use_cache" not in kwargs:
        kwargs["use_cache"] = False
    return kwargs
