"""The weight layers of a live model, without capturing a graph: the JSON contract's definition
(a submodule owning a ``weight``-named tensor of two or more dimensions) read from the modules,
through DDP's ``module`` and FSDP2's renamed classes, with their source lines."""

from __future__ import annotations

from typing import Any

from ..verify.distributed import DistributedError, wrapped_kind


def unwrap(model: Any) -> tuple[Any, str | None]:
    """(the user's module, the wrapper kind: "ddp", "fsdp2" or None). A mix of DDP and FSDP, and
    FSDP1, are refused with one line."""
    kind = wrapped_kind(model)
    if kind == "mixed":
        raise DistributedError("the model mixes DistributedDataParallel and FSDP: gradlint measures a model "
                               "wrapped by one of them (DDP, or FSDP2's fully_shard), not both")
    if kind == "fsdp1":
        raise DistributedError("FullyShardedDataParallel (FSDP1) flattens the parameters, so per-layer gradients "
                               "cannot be read; shard with FSDP2 (torch.distributed.fsdp.fully_shard) instead")
    inner = model.module if kind == "ddp" and hasattr(model, "module") else model
    return inner, kind


def class_name(module: Any) -> str:
    """The user's class name, also for a module FSDP2 re-classed as ``FSDP<Name>``."""
    cls = type(module)
    if cls.__name__.startswith("FSDP") and any(b.__name__ == "FSDPModule" for b in cls.__mro__):
        return cls.__bases__[-1].__name__
    return cls.__name__


def weight_layers(model: Any) -> list[Any]:
    """``LayerSpec`` per weight layer, in the modules' definition order (the caller reorders them
    by the forward's order once it has seen one)."""
    import torch.nn as nn

    from ..api import in_memory_sites
    from ..capture.builder import is_weight_param_name
    from ..verify.passes import LayerSpec

    sites = in_memory_sites(model)
    seen: set[int] = set()
    out = []
    for name, module in model.named_modules():
        if not name:
            continue
        weights = []
        for local, p in module.named_parameters(recurse=False):
            if is_weight_param_name(local) and p.dim() >= 2 and id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                weights.append(f"{name}.{local}")
        if weights:
            out.append(LayerSpec(name, class_name(module), sites.get(name), weights,
                                 isinstance(module, (nn.Embedding, nn.EmbeddingBag))))
    return out


def reducer_for(kind: str | None, group: Any = None, as_sums: bool = False) -> Any:
    """A cross-rank ``Reducer`` for a wrapped model (None for a plain one in one process).
    ``as_sums``: turn the engine's averaged gradients back into sums over the whole batch."""
    import torch.distributed as dist

    if kind is None:
        return None
    if not dist.is_available() or not dist.is_initialized():
        raise DistributedError(f"the model is wrapped for {kind.upper()} but no process group is initialized: "
                               "call torch.distributed.init_process_group(...) first")
    from ..verify.distributed import Reducer

    return Reducer(group, replicated_plain=kind == "ddp",
                   sharded_scale=float(dist.get_world_size(group)) if as_sums else 1.0)
