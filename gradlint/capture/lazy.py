"""Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``, ...) learn their weights' shapes from the
first input they see. As PyTorch's documentation recommends, a dry run of the forward on the
example inputs materializes them before anything reads the weights; when that run fails, that
model alone is a GL001 at stage ``build``."""

from __future__ import annotations

from typing import Any

from ..ir.errors import StageError, one_line
from ..load.build import count_parameters
from ..load.limits import PASS_THROUGH


def uninitialized(model: Any) -> list[str]:
    """Qualified names of the lazy modules whose parameters have no shape yet."""
    from torch.nn.modules.lazy import LazyModuleMixin

    return [name or type(m).__name__ for name, m in model.named_modules()
            if isinstance(m, LazyModuleMixin) and m.has_uninitialized_params()]


def materialize(built: Any, loaded: Any, config: Any) -> None:
    """Run the forward once (no gradient, eval mode, so no running statistic moves) on the
    example inputs of each twin of ``built`` that has uninitialized lazy modules."""
    import torch

    from .inputs import example_inputs_for, forward_kwargs

    lazy = uninitialized(built.model)
    if not lazy:
        return
    names = ", ".join(lazy[:3]) + (f" and {len(lazy) - 3} more" if len(lazy) > 3 else "")
    if loaded.example_inputs is None and not config.input_shape:
        raise StageError("build", f"{names}: lazy modules take their shapes from the first input, and the file "
                         "gives none", built.candidate.location,
                         "define example_inputs() in the file (or pass --input-shape) so a dry run can materialize them")
    twins = [(built.model, "cpu" if built.materialized else "meta")]
    if built.meta_model is not None and built.meta_model is not built.model:
        twins.append((built.meta_model, "meta"))
    for model, device in twins:
        example = example_inputs_for(built, loaded, config, device)
        modes = {m: m.training for m in model.modules()}
        model.eval()
        try:
            with torch.no_grad():
                model(*example.args, **forward_kwargs(model, example))
        except BaseException as e:  # noqa: BLE001 - the user's forward may raise anything
            if isinstance(e, PASS_THROUGH):
                raise
            raise StageError("build", f"{names}: lazy modules, and the dry run that materializes them failed: "
                             f"{one_line(e)}", built.candidate.location,
                             "check example_inputs() against the model's forward") from None
        finally:
            for m, training in modes.items():
                m.training = training
    built.parameters = count_parameters(built.model)
    built.notes.append(f"lazy modules materialized by a dry run on the example inputs: {names}")
