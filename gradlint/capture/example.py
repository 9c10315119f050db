"""Example inputs as values: the tensors a forward is called with, and plans that make the same
inputs on any device. No torch at import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_BATCH = 8
DEFAULT_SEQUENCE = 16


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor to make: its shape, its dtype, and for integer inputs the range of values."""

    shape: tuple[int, ...]
    dtype: str = "float32"  # a torch dtype's name
    high: int | None = None  # integer inputs take values in [0, high)

    def make(self, device: str) -> Any:
        import torch

        dtype = getattr(torch, self.dtype)
        if dtype.is_floating_point or dtype.is_complex:
            return torch.randn(self.shape, dtype=dtype, device=device)
        if dtype == torch.bool:
            return torch.randint(0, 2, self.shape, device=device).bool()
        return torch.randint(0, max(self.high or 2, 1), self.shape, dtype=dtype, device=device)


@dataclass(frozen=True)
class InputPlan:
    """Inputs decided once (inferred or configured) and made on any device: the capture on meta,
    the estimate's statistics and --verify see the same shapes."""

    args: tuple[TensorSpec | None, ...]  # None: pass None (a recurrent state that starts at zero)
    source: str
    side: int | None = None  # the image side, when the plan is a guessed image

    def make(self, device: str) -> "ExampleInputs":
        return ExampleInputs(tuple(t.make(device) if t is not None else None for t in self.args), {}, self.source,
                             self.side, self)


@dataclass
class ExampleInputs:
    args: tuple
    kwargs: dict
    source: str  # "example_inputs()", "input-shape", "inferred from <layer>"
    side: int | None = None  # the image side of a guessed image input
    plan: InputPlan | None = None  # how to make the same inputs on another device

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

        return ExampleInputs(move(self.args), move(self.kwargs), self.source, self.side, self.plan)


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
