"""Capture: a built model and example inputs in, one ``LayerGraph`` out.

torch.fx symbolic tracing first. When fx cannot trace the code (Hugging Face models, shape- or
config-dependent branches), the forward runs on meta tensors with hooks recording every module
call and torch function: it follows any Python control flow that does not need tensor values,
and costs ~0.03 s where ``torch.export`` costs 0.3-0.5 s per model (plus ~1 s the first time),
which matters in a commit hook. ``torch.export`` (non-strict, fake tensors) comes next, for ops
meta tensors cannot run; last, the hooks capture runs on the materialized model with real inputs,
for forward code that needs real values (``if x.sum() > 0``).
"""

from __future__ import annotations

from typing import Any

from ..ir.errors import StageError, one_line, user_frame_of
from ..ir.graph import LayerGraph
from ..load.build import set_training
from ..load.limits import PASS_THROUGH
from .contexts import quiet_torch, values_unknown_like_a_compiler  # noqa: F401 - re-exported

METHODS = ("fx", "hooks", "export")


def _run(method: str, model: Any, sites: Any, args: tuple, kwargs: dict) -> LayerGraph:
    from .inputs import flattening_wrapper

    if method == "fx":
        from .fx_capture import capture_fx

        return capture_fx(model, sites, args, kwargs)
    if method == "export":
        from .export_capture import capture_export

        return capture_export(model, sites, args, kwargs, wrapper=flattening_wrapper(model), prefix="m.")
    from .hook_capture import capture_hooks

    if _on_meta(args, kwargs):
        with values_unknown_like_a_compiler():
            return capture_hooks(model, sites, args, kwargs)
    return capture_hooks(model, sites, args, kwargs)


def _sparse(example: Any) -> bool:
    """Inputs with a sparse layout (a graph's adjacency matrix)."""
    import torch

    from .tensors import tensors_in

    return any(t.layout != torch.strided for t in tensors_in((tuple(example.args), dict(example.kwargs))))


def _on_meta(args: tuple, kwargs: dict) -> bool:
    from .tensors import tensors_in

    return any(t.device.type == "meta" for t in tensors_in((args, kwargs)))


def capture(built: Any, example: Any, real_example: Any = None, methods: tuple[str, ...] = METHODS) -> LayerGraph:
    """``example``: inputs on the capture device (meta when ``built.meta_model`` exists).
    ``real_example``: a thunk giving CPU inputs, for the hooks retry on a materialized model."""
    import torch

    from ..load.importer import user_stdout_to_stderr
    from .inputs import forward_kwargs

    attempts: list[tuple[str, Any, BaseException]] = []
    plans = []
    if built.meta_model is not None and not (built.materialized and _sparse(example)):
        plans += [(m, built.meta_model, "meta", example) for m in methods]
        if built.materialized and "hooks" in methods:
            plans.append(("hooks", built.model, "cpu", None))
    else:
        # no meta twin, or sparse inputs (most sparse kernels have no meta version): on the CPU
        cpu_example = example if built.meta_model is None else None
        plans += [(m, built.model, "cpu", cpu_example) for m in methods]
    for method, model, device, ex in plans:
        if ex is None:
            if real_example is None:
                continue
            try:
                ex = real_example()
            except PASS_THROUGH:
                raise
            except BaseException as e:  # noqa: BLE001
                attempts.append((method + "(cpu)", None, e))
                continue
        kwargs = forward_kwargs(model, ex)
        try:
            with torch.device(device), user_stdout_to_stderr(), quiet_torch():
                set_training(model)
                graph = _run(method, model, built.sites, ex.args, kwargs)
        except PASS_THROUGH:
            raise
        except BaseException as e:  # noqa: BLE001 - user forward code can raise anything
            attempts.append((method if device == "meta" or built.meta_model is None else f"{method} on {device}", model, e))
            continue
        if attempts:
            graph.notes.append("captured by " + method + " after " + ", ".join(
                f"{m} failed ({type(e).__name__})" for m, _, e in attempts))
        graph.capture = method
        graph.input_source = ex.source
        return graph
    # Every method failed: report the forward's own error (hooks ran the real code) with its line.
    primary = next((e for m, _, e in reversed(attempts) if m.startswith("hooks")), attempts[-1][2] if attempts else None)
    if primary is None:
        raise StageError("capture", "no capture method could run")
    msg = one_line(primary)
    # Each other method once, and its error only when it differs from the one reported.
    same = [m for m, _, e in attempts if e is not primary and one_line(e) == msg]
    other = [f"{m}: {one_line(e, 120)}" for m, _, e in attempts if e is not primary and one_line(e) != msg]
    detail = (["also failed the same way: " + ", ".join(same)] if same else []) + (["also tried " + "; ".join(other)]
                                                                                    if other else [])
    raise StageError("capture", msg + (f" ({'; '.join(detail)})" if detail else ""), user_frame_of(primary),
                     "make forward() run on the example inputs, or define example_inputs() in the file")


def capture_with_inputs(built: Any, loaded: Any, config: Any, device: str) -> tuple[LayerGraph, Any]:
    """Capture on the example inputs. A guessed image the model rejects for its size (Inception
    wants 299, a CIFAR net's flatten wants 32) is guessed again with other sides; when all fail,
    the first error says which input it was given."""
    from . import inputs as inp

    example = inp.example_inputs_for(built, loaded, config, device)
    first: StageError | None = None
    tried: list[str] = []
    sides: list[int] = []
    side = None
    while True:
        real = ((lambda s=side, ex=example: inp.example_inputs_for(built, loaded, config, "cpu", side=s, like=ex))
                if built.materialized else None)
        try:
            graph = capture(built, example, real)
        except StageError as e:
            tried.append(inp.describe(example))
            if first is None:
                first = e
                sides = inp.retry_sides(example, e.message)
            if not sides:
                if example.source.startswith("inferred"):
                    also = f"; also tried {', '.join(tried[1:])}" if len(tried) > 1 else ""
                    first.message += f" (on the inferred input {tried[0]}{also})"
                    first.hint = ("define example_inputs() in the file (or pass --input-shape) with the input the "
                                  "model expects")
                raise first from None
            side = sides.pop(0)
            example = inp.example_inputs_for(built, loaded, config, device, side=side)
            continue
        if first is not None:
            graph.notes.append(f"the inferred input {tried[0]} was rejected ({first.message.split(' (also tried')[0]}); "
                               f"analysed with {inp.describe(example)}")
        return graph, example
