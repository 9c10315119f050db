"""The measured pass's entry point (``--verify``): one forward/backward pass per model, after the
static analysis. The pipeline's verify stage records the ``Measurement`` in the report and hands
it to the GL3xx rules.

Memory: a model gradlint already materialized on the CPU is measured where it is (moved to the
GPU and back with ``--device cuda``, one tensor at a time); a model kept on the meta device is
built once on the target device, after checking that its weights and gradients fit. Any failure
is a ``StageError("verify", ...)``: GL001 for this model, with the static results kept.
"""

from __future__ import annotations

import sys
from typing import Any

from ..ir.errors import StageError
from .measurement import Measurement
from .pass_setup import inputs_for, located_at, loss_function


def measure_model(graph: Any, built: Any, loaded: Any, example: Any, config: Any,
                  saturation_threshold: float = 5.0) -> Measurement | None:
    """One measured pass on the built model (None when it has no weight layer to measure).
    ``saturation_threshold``: |pre-activation| beyond which sigmoid/tanh count as saturated
    (GL303's option)."""
    import torch

    from .passes import has_functional_activations, layer_specs, run_pass
    from .resources import DeviceError, resolve_device

    from .distributed import active

    if active() is not None:
        from .sharded import measure_sharded

        return measure_sharded(graph, built, loaded, example, config, active(), saturation_threshold)
    try:
        device = resolve_device(config.device)
    except DeviceError as e:
        raise StageError("verify", str(e), None, "use --device cpu or --device auto") from None
    layers = layer_specs(graph)
    if not layers:
        return None
    loss_fn, loss_name = loss_function(loaded, config)

    model, sites, vbuilt, moved = _materialize(built, device, config)
    try:
        with torch.random.fork_rng(devices=_cuda_index(device)):
            torch.manual_seed(config.seed)  # inferred inputs are random: --seed makes them repeatable
            inputs = inputs_for(vbuilt, loaded, config, device, example)
        from ..capture.inputs import forward_kwargs
        from ..load.importer import user_stdout_to_stderr

        batch = _batch_of(inputs.args)
        with user_stdout_to_stderr(), located_at(built.candidate.location):
            m = run_pass(model, inputs.args, forward_kwargs(model, inputs), layers, sites=sites, seed=config.seed,
                         loss_fn=loss_fn, loss_name=loss_name, device=device, input_source=inputs.source,
                         thresholds=config.thresholds,
                         saturation_threshold=saturation_threshold,
                         preserve_buffers=bool(getattr(built, "in_memory", False)),
                         batch_hint=f" at batch {batch}" if batch else "",
                         functional_activations=has_functional_activations(graph))
    finally:
        if moved is not None:
            model.to(moved)  # back where it was
        del model, vbuilt
    return m




def _materialize(built: Any, device: str, config: Any) -> tuple[Any, dict, Any, Any]:
    """(model on device, construction sites, the BuiltModel it belongs to, the device it was moved
    from or None)."""
    import torch

    from .resources import check_fits

    if built.materialized:
        model = built.model
        here = _device_of(model)
        want = torch.device(device)
        if here.type == want.type and (here.index or 0) == (want.index or 0):
            check_fits(model, device, already_there=True)  # the gradients are still to come
            return model, built.sites, built, None
        check_fits(model, device, already_there=False)
        model.to(device)  # parameter by parameter: the model never exists twice
        return model, built.sites, built, here

    from ..load.build import build_model

    check_fits(built.meta_model if built.meta_model is not None else built.model, device, already_there=False)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            vbuilt = build_model(built.candidate, sys.maxsize, device=device)
    except StageError as e:
        raise StageError("verify", f"building the model on {device} failed: {e.message}", e.location, e.hint) from None
    return vbuilt.model, vbuilt.sites, vbuilt, None


def _cuda_index(device: str) -> list[int]:
    import torch

    return [torch.device(device).index or 0] if device.startswith("cuda") else []


def _device_of(model: Any) -> Any:
    import torch

    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _batch_of(args: tuple) -> int | None:
    shape = getattr(args[0], "shape", None) if args else None
    return int(shape[0]) if shape is not None and len(shape) > 0 else None
