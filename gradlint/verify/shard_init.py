"""Weights for a sharded model that does not fit in one process: each rank builds the model with
its large layers' parameters on the meta device, shards it with FSDP2, and fills its shards with
the model's own init code, one module at a time.

How, per module that owns a meta parameter (a Linear, a Conv, an Embedding: modules with a
``reset_parameters``): its parameters are made whole on the device for a moment, the module's
``reset_parameters()`` runs on them (torch's own init for the layer), then the value law the
model's init code left on the meta build replaces it where one was recorded (``normal_(std=0.02)``
from an ``_init_weights``, a zero-initialized head; ``load/init_recorder.py``), or, for a Hugging
Face model whose ``_init_weights`` skips meta tensors, N(0, initializer_range^2) as transformers
draws it; each rank keeps its own rows and frees the rest. Every rank draws from the same seed in
the same order, so the shards fit together into one consistent weight tensor, statistically
equivalent to the model's own initialization (not equal to it: the random stream differs).
Parameters of other modules, and all buffers (rotary frequencies), are built for real on every
rank, as the constructor makes them. Peak memory per rank: the shards, the small parameters and
one module's whole parameters.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from ..ir.errors import StageError

BIG = 1 << 16  # parameters with at least this many entries start on meta when their module can reset them


@contextlib.contextmanager
def large_parameters_on_meta() -> Iterator[None]:
    """While constructing: a parameter registered by a module that has ``reset_parameters`` and with
    at least ``BIG`` entries is moved to the meta device (its values come from that method later)."""
    import torch
    import torch.nn as nn

    original = nn.Module.register_parameter

    def register(self: Any, name: str, param: Any) -> None:
        if (param is not None and param.numel() >= BIG and not param.is_meta
                and callable(getattr(type(self), "reset_parameters", None))):
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        with torch.device("cpu"):
            yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def _hf_range(model: Any) -> float | None:
    r = getattr(getattr(model, "config", None), "initializer_range", None)
    return float(r) if isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 else None


def _draw(t: Any, law: Any) -> None:
    """Fill ``t`` from a recorded ``initlaw.Law``."""
    import math

    import torch

    with torch.no_grad():
        if law.kind == "uniform":
            t.uniform_(law.lo, law.hi) if law.lo != law.hi else t.fill_(law.lo)
        elif law.kind == "normal" and math.isinf(law.lo) and math.isinf(law.hi):
            t.normal_(law.mu, law.sigma)
        elif law.kind == "normal":
            torch.nn.init.trunc_normal_(t, law.mu, law.sigma, law.lo, law.hi)
        else:  # only the moments are known: a normal with that mean and variance
            t.normal_(law.mean, max(law.second - law.mean ** 2, 0.0) ** 0.5)


def build_sharded(built: Any, config: Any, dist_run: Any) -> tuple[Any, dict, int, list[str]]:
    """(sharded model on this rank's device, construction sites, FSDP units incl. the root, notes)."""
    import torch
    import torch.nn as nn

    from ..load.build import call_factory
    from .blocks import units_by_policy
    from .distributed import fully_shard_model, local
    from .resources import available_bytes, gib

    device = dist_run.device
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            with large_parameters_on_meta():
                model = call_factory(built.candidate)
    except Exception as e:  # noqa: BLE001 - the constructor ran before, on meta: rare
        raise StageError("verify", f"building the model with its large layers on meta failed: {type(e).__name__}: {e}",
                         built.candidate.location) from None
    model.train()
    meta_names = {n for n, p in model.named_parameters() if p.is_meta}
    real_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if n not in meta_names)
    shard_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if n in meta_names)
    # this rank's share: its shards (weights and gradients) and the whole small parameters
    need = 2 * (shard_bytes // dist_run.world_size + real_bytes)
    free = available_bytes(device)
    if free is not None and need > 0.9 * free:
        raise StageError("verify", f"this rank's shards need about {gib(need)} on {device} for weights and gradients "
                         f"before any activation, and {gib(free)} is free",
                         built.candidate.location, "start more ranks (torchrun --nproc-per-node, --nnodes), or --depth K")

    # keep what the constructor made for real; to_empty gives every tensor new, empty storage
    kept = {("p", n): p.detach().clone() for n, p in model.named_parameters() if n not in meta_names}
    kept.update({("b", n): b.detach().clone() for n, b in model.named_buffers() if not b.is_meta})
    units = fully_shard_model(model, units_by_policy(model, config.shard_units), device)
    model.to_empty(device=device)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ("p", n) in kept:
                local(p).copy_(_rows(kept[("p", n)], p, dist_run))
        for n, b in model.named_buffers():
            if ("b", n) in kept:
                b.copy_(kept[("b", n)])
    kept.clear()

    laws = built.init_laws or {}
    hf_range = _hf_range(model)
    reset, from_law, from_hf = 0, 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        for mod_name, module in model.named_modules():
            sharded = dict(module.named_parameters(recurse=False))
            wanted = {n for n in sharded if (f"{mod_name}.{n}" if mod_name else n) in meta_names}
            if not wanted:
                continue
            # all of the module's own parameters, whole, so reset_parameters() touches no shard;
            # only the ones that were on meta are kept afterwards
            whole = {n: torch.empty(p.shape, dtype=p.dtype, device=device) for n, p in sharded.items()}
            for n, t in whole.items():
                module._parameters[n] = nn.Parameter(t, requires_grad=sharded[n].requires_grad)
            try:
                module.reset_parameters()
                reset += 1
                for n in wanted:
                    full_name = f"{mod_name}.{n}" if mod_name else n
                    law = laws.get(full_name)
                    if law is not None:
                        _draw(whole[n], law)
                        from_law += 1
                    elif full_name not in laws and hf_range is not None and isinstance(module, (nn.Linear, nn.Embedding)):
                        with torch.no_grad():
                            whole[n].normal_(0.0, hf_range) if n == "weight" else whole[n].zero_()
                        from_hf += 1
            finally:
                for n, p in sharded.items():
                    module._parameters[n] = p
            with torch.no_grad():
                for n in wanted:
                    local(sharded[n]).copy_(_rows(whole[n], sharded[n], dist_run))
            del whole
    notes = [f"per-shard init: {len(meta_names)} parameters of {reset} modules filled shard by shard from their "
             f"reset_parameters()"
             + (f", {from_law} of them then from the init law the model's code recorded" if from_law else "")
             + (f", {from_hf} from N(0, initializer_range={hf_range}) as transformers initializes them" if from_hf else "")
             + f"; about {gib(need)} per rank for weights and gradients"]
    return model, built.sites, units, notes


def _rows(full: Any, sharded: Any, dist_run: Any) -> Any:
    """This rank's rows of ``full`` as FSDP2 lays out ``sharded`` (dim-0 chunks, the last ones
    shorter or empty)."""
    import torch

    from .distributed import is_sharded

    if not is_sharded(sharded):
        return full
    chunks = torch.chunk(full, dist_run.world_size, dim=0)
    part = chunks[dist_run.rank] if dist_run.rank < len(chunks) else full[:0]
    return part.to(sharded.device)

