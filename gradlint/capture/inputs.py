"""Example inputs: the file's ``example_inputs()``, the configured shapes (``input-shape``, with
dtypes, one per forward input), what a model library declares, or guessed from the model
(``infer_inputs.py``)."""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from ..ir.errors import StageError, stage_error
from .example import (  # noqa: F401 - re-exported: callers import them from here
    DEFAULT_BATCH, DEFAULT_SEQUENCE, ExampleInputs, InputPlan, TensorSpec, forward_kwargs,
)
from .tensors import output_tensors  # noqa: F401 - re-exported: verify and benchmarks import it here

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
    """The file's ``example_inputs()``, called as the user wrote it (outside any device context, so
    sparse and integer tensors come out as intended), then moved to ``device``."""
    try:
        example = normalize(fn(), "example_inputs()")
    except Exception as e:  # noqa: BLE001 - user code
        raise stage_error("capture", e, hint="example_inputs() must run without arguments") from None
    try:
        return example.to(device)
    except Exception as e:  # noqa: BLE001 - a tensor that cannot live there
        raise StageError("capture", f"example_inputs() gave a tensor that cannot be moved to {device}: "
                                    f"{type(e).__name__}: {e}") from None


def plan_from_shapes(shapes: list[Any], model: Any, source: str = "input-shape") -> InputPlan:
    """The configured ``input-shape`` entries (``config.InputShape``: a shape, a dtype or None),
    one per positional input. Integer inputs are token ids below the first embedding's vocabulary
    (the smallest one's for later inputs); an untyped first input feeding an embedding is one too."""
    import torch.nn as nn

    from .infer_inputs import registration_first, traced_first

    embeddings = (nn.Embedding, nn.EmbeddingBag)
    smallest = min((m.num_embeddings for m in model.modules() if isinstance(m, embeddings)), default=None)
    traced = traced_first(model)
    first = traced[0][1] if traced is not None else registration_first(model)[1]
    specs = []
    for i, s in enumerate(shapes):
        dtype = s.dtype or ("int64" if i == 0 and isinstance(first, embeddings) else "float32")
        high = None
        if not dtype.startswith(("float", "bfloat", "complex")):
            high = first.num_embeddings if i == 0 and isinstance(first, embeddings) else smallest
        specs.append(TensorSpec(tuple(s.shape), dtype, high))
    return InputPlan(tuple(specs), source)


def infer(model: Any, device: str, batch: int = DEFAULT_BATCH, side: int | None = None) -> ExampleInputs:
    """Inputs the model declares (library metadata), else a guess checked on the model itself
    (``infer_inputs.infer_plan``). ``side``: the image side a retry chose."""
    if side is None:
        declared = from_metadata(model, device, batch)
        if declared is not None:
            return declared
    from .infer_inputs import infer_plan

    plan = infer_plan(model, batch, side)
    if plan is None:
        raise StageError("capture", "cannot infer an input shape: the model has no weight layer",
                         hint="define example_inputs() in the file or pass --input-shape")
    return plan.make(device)


def _ints(value: Any, n: int | None = None) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * (n or 1)
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                            for v in value):
        return tuple(value) if n is None or len(value) == n else None
    return None


def from_metadata(model: Any, device: str, batch: int) -> ExampleInputs | None:
    """What model libraries record about their inputs: timm's ``pretrained_cfg["input_size"]``,
    Hugging Face's ``main_input_name`` with its ``config``, an ``image_size`` attribute (torchvision's
    ViT). Models with a fixed input size (ViT at 384, a Swin window grid) only run on that size."""
    import torch

    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        size = _ints(cfg.get("input_size")) if isinstance(cfg, dict) else None
        if size is not None and len(size) == 3:
            return ExampleInputs((torch.randn(batch, *size, device=device),), {}, f"{attr}['input_size'] of the model")
    config = getattr(model, "config", None)
    main = getattr(model, "main_input_name", None)
    if config is not None and isinstance(main, str):
        hf = _from_hf_config(model, config, main, device, batch)
        if hf is not None:
            return hf
    side = _ints(getattr(model, "image_size", None) or getattr(model, "img_size", None), 2)
    from .infer_inputs import registration_first

    _, first = registration_first(model)
    if side is not None and isinstance(first, torch.nn.Conv2d):
        return ExampleInputs((torch.randn(batch, first.in_channels, *side, device=device),), {},
                             "the model's image_size")
    return None


def _from_hf_config(model: Any, config: Any, main: str, device: str, batch: int) -> ExampleInputs | None:
    import inspect

    import torch

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    src = f"the Hugging Face config ({main})"
    if main == "input_ids":
        vocab = getattr(config, "vocab_size", None)
        if not isinstance(vocab, int) or vocab <= 0:
            return None
        ids = torch.randint(0, vocab, (batch, DEFAULT_SEQUENCE), device=device)
        kwargs = {"input_ids": ids}
        if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
            kwargs["decoder_input_ids"] = torch.randint(0, vocab, (batch, DEFAULT_SEQUENCE // 2), device=device)
        return ExampleInputs((), kwargs, src)
    if main == "pixel_values":
        size = _ints(getattr(config, "image_size", None), 2)
        channels = getattr(config, "num_channels", 3)
        if size is None or not isinstance(channels, int):
            return None
        return ExampleInputs((), {"pixel_values": torch.randn(batch, channels, *size, device=device)}, src)
    if main == "input_values":  # raw audio: one second at 16 kHz
        return ExampleInputs((), {"input_values": torch.randn(batch, 16000, device=device)}, src)
    return None


# Image sides worth a second try when a guessed image is rejected: Inception's 299, CIFAR's 32,
# MNIST's 28, and 64 and 512 for the rest.
_RETRY_SIDES = (299, 32, 28, 64, 512)
_SHAPE_COMPLAINT = re.compile(r"size|shape|dimension|divisible|match|kernel|mat1 and mat2", re.IGNORECASE)
_MATMUL_SHAPES = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")


def retry_sides(example: ExampleInputs, message: str) -> list[int]:
    """Other image sides to try after a guessed image input was rejected with ``message``.

    Only for guesses (never for inputs the user or the model declared) and only when the error
    talks about sizes. A fixed ``Linear`` after ``flatten`` names the size it wanted: the side
    that gives it comes first.
    """
    x = example.args[0] if len(example.args) == 1 and not example.kwargs else None
    if not example.source.startswith("inferred") or getattr(x, "dim", lambda: 0)() != 4:
        return []
    if not _SHAPE_COMPLAINT.search(message):
        return []
    side = int(x.shape[-1])
    sides: list[int] = []
    m = _MATMUL_SHAPES.search(message)
    if m:
        got, wanted = int(m.group(2)), int(m.group(3))
        guess = round(side * math.sqrt(wanted / got)) if got else 0
        if guess > 0:
            sides.append(guess)
    sides += [s for s in _RETRY_SIDES if s != side]
    return list(dict.fromkeys(sides))


def describe(example: ExampleInputs) -> str:
    """``float[2, 3, 224, 224]`` for each input, for messages."""
    import torch

    parts = []
    for v in list(example.args) + list(example.kwargs.values()):
        if isinstance(v, torch.Tensor):
            kind = "float" if v.is_floating_point() else "int"
            parts.append(f"{kind}[{', '.join(str(int(d)) for d in v.shape)}]")
    return ", ".join(parts)


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


def example_inputs_for(built: Any, loaded: Any, config: Any, device: str, side: int | None = None,
                       like: ExampleInputs | None = None) -> ExampleInputs:
    """The model's example inputs on ``device``: the file's ``example_inputs()``, else the
    configured shapes, else inferred from the model (``side``: the image side a retry chose).
    ``like``: inputs made before (on another device) whose plan is made again here, so every
    stage sees the same shapes without guessing twice."""
    if loaded.example_inputs is not None:
        return from_function(loaded.example_inputs, device)
    if like is not None and like.plan is not None and (side is None or side == like.side):
        return like.plan.make(device)
    if config.input_shape:
        model = built.meta_model if built.meta_model is not None else built.model
        return plan_from_shapes(config.input_shape, model).make(device)
    # guesses are checked by running the model: on the meta twin when there is one (free)
    model = built.meta_model if built.meta_model is not None else built.model
    ex = infer(model, device, batch=config.batch_size or DEFAULT_BATCH, side=side)
    if side is not None:
        ex.side = side
    return ex
