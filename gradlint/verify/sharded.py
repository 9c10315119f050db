"""``--verify`` as one rank of a torchrun job: the model sharded with FSDP2, the global batch split
across the ranks, every statistic summed across them (``distributed.py``).

Weights. A model gradlint materialized (up to ``materialize-limit`` parameters) was built on every
rank from the same seed, so each rank holds the weights a one-process run would measure; it is
sharded as it is ("init-once"), and the measurement equals the one-process one up to the order of
floating-point sums. A model kept on the meta device is built on each rank with its parameters
on meta, sharded, and each rank fills its own shard with the model's own init code
(``shard_init.py``, "per-shard-init"): statistically equivalent weights, never the whole model in
one process.

Failures. Problems found before the ranks first talk (a batch the ranks cannot split, a missing
loss function) are the same on every rank: GL001 for the model, as in one process. A failure once
the sharded pass has begun ends this rank (``RankFailure``): its peers are waiting in a
collective, and torchrun, or the process group's timeout, ends them.
"""

from __future__ import annotations

from typing import Any

from ..ir.errors import StageError, one_line
from .distributed import DistRun, DistributedError, RankFailure, Reducer, fully_shard_model, split_batch
from .measurement import Measurement


def measure_sharded(graph: Any, built: Any, loaded: Any, example: Any, config: Any, dist_run: DistRun,
                    saturation_threshold: float = 5.0, model: Any = None, sites: dict | None = None,
                    label: str = "") -> Measurement | None:
    """One sharded measured pass of ``built`` (or of ``model``, a variant of it such as a
    depth-truncated copy, with its construction ``sites``)."""
    import torch

    from ..capture.inputs import forward_kwargs
    from ..load.importer import user_stdout_to_stderr
    from .blocks import main_blocks, units_by_policy
    from .passes import has_functional_activations, layer_specs, run_pass
    from .pass_setup import inputs_for, located_at, loss_function

    layers = layer_specs(graph)
    if not layers:
        return None
    loss_fn, loss_name = loss_function(loaded, config)
    device = dist_run.device
    spec = built.candidate.target.spec
    notes: list[str] = []

    if model is None:
        if built.materialized:
            model, sites, weights = built.model, built.sites, "init-once"
        else:
            from .shard_init import build_sharded

            weights = "per-shard-init"
    else:
        weights = "init-once"
    with torch.random.fork_rng(devices=_cuda(device)):
        torch.manual_seed(config.seed)  # the same global batch on every rank
        inputs = inputs_for(built, loaded, config, device, example)
    kwargs = forward_kwargs(model if model is not None else built.meta_model, inputs)
    try:
        args, kwargs, batch = split_batch(inputs.args, kwargs, dist_run.rank, dist_run.world_size)
    except DistributedError as e:
        raise StageError("verify", str(e), built.candidate.location,
                         "torchrun --nproc-per-node N with N dividing the batch") from None

    reducer = Reducer(sharded_scale=float(dist_run.world_size))
    try:
        # the first word between the ranks: all of them are at the same model with the same batch
        reducer.same_everywhere("the model and batch being verified", (spec, label, batch, len(layers)))
        if weights == "per-shard-init":
            blocks = main_blocks(built.meta_model)
            model, sites, units, init_notes = build_sharded(built, config, dist_run)
            notes += init_notes
        else:
            blocks = main_blocks(model)
            model = model.to(device) if device != "cpu" else model
            units = fully_shard_model(model, units_by_policy(model, config.shard_units), device)
        with user_stdout_to_stderr(), located_at(built.candidate.location):
            m = run_pass(model, args, kwargs, layers, sites=sites, seed=config.seed, loss_fn=loss_fn,
                         loss_name=loss_name, device=device, input_source=inputs.source,
                         thresholds=config.thresholds, saturation_threshold=saturation_threshold,
                         batch_hint=f" at batch {batch // dist_run.world_size} per rank",
                         functional_activations=has_functional_activations(graph), reducer=reducer)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - past the first collective, a failure ends the rank
        message = e.message if isinstance(e, StageError) else one_line(e, 200)
        raise RankFailure(f"rank {dist_run.rank} of {dist_run.world_size}: {spec}: verify failed: {message}") from None
    dist_run.weights.append(weights)
    how = ("the weights were initialized once and sharded (the same weights as a one-process run)"
           if weights == "init-once" else
           "each rank initialized its own shards with the model's init code (weights statistically "
           "equivalent to a one-process run, not equal)")
    unit_text = f"{units - 1} units ({blocks.describe()}) and the root" if blocks and units > 1 else "the root as one unit"
    m.notes.insert(0, f"sharded over {dist_run.world_size} ranks ({dist_run.backend}, {device} on rank "
                      f"{dist_run.rank}) with FSDP2: {unit_text}; {how}; global batch {batch} = "
                      f"{dist_run.world_size} x {batch // dist_run.world_size}")
    m.notes += notes
    if any("BatchNorm" in type(mod).__name__ for mod in model.modules()):
        m.notes.append("BatchNorm normalizes over each rank's rows of the batch (as DDP/FSDP training does "
                       "without SyncBatchNorm), so its layers differ from a one-process run")
    return m


def _cuda(device: str) -> list[int]:
    import torch

    return [torch.device(device).index or 0] if device.startswith("cuda") else []
