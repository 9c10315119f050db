"""The measured pass across processes: torchrun's ranks, one process group, FSDP2 shards, and the
cross-rank sums that turn each rank's share of the statistics into the model's.

Under ``torchrun`` every rank runs gradlint in-process (no worker processes, no cache: every rank
must reach the same collectives in the same order). The front (``cli.py``) calls ``start`` once:
it reads torchrun's environment, picks the device (``cuda:LOCAL_RANK`` with NCCL when CUDA is asked
for, else the CPU with gloo) and opens the default process group with a timeout, so a rank that
stops answering takes the others down within that time instead of hanging them.

What is summed, and why that equals a one-process run: every per-layer statistic of the pass is a
sum over gradient entries or over activation entries (squared gradient sums, zero / non-finite /
sign counts, histogram counts, saturated and inactive counts). A sharded gradient's entries are
split across ranks, so its sums add up; a replicated one (DDP, or a DTensor replicated on the
mesh) is counted on rank 0 only. Activations are split by the batch, so their counts add up too;
a ReLU unit is dead when it is off for every example of the *global* batch, so the per-unit
"alive" masks are OR-ed across ranks before counting. Only then is the RMS taken.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

# torchrun (and any launcher following its convention) sets these for every worker
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(ValueError):
    """A distributed setting that cannot work (a missing variable, a batch the ranks cannot split):
    one line for the user, the same on every rank."""


class RankFailure(BaseException):
    """This rank failed after the ranks began talking to each other: its peers are (or will be)
    waiting in a collective it will never join. Not an ``Exception``, so the pipeline's per-model
    handlers let it through: the front prints it and ends the process at once, and torchrun (or the
    collectives' timeout) ends the other ranks."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def torchrun_env(environ: Any = None) -> dict[str, int] | None:
    """``{"rank", "world_size", "local_rank"}`` when launched by torchrun, else None. Torch-free."""
    env = os.environ if environ is None else environ
    if "RANK" not in env and "WORLD_SIZE" not in env and "TORCHELASTIC_RUN_ID" not in env:
        return None
    missing = [v for v in TORCHRUN_VARS if v not in env and v != "LOCAL_RANK"]
    if missing:
        raise DistributedError(f"launched as rank of a distributed run but {', '.join(missing)} "
                               "is not set; start gradlint with torchrun (torchrun --nproc-per-node N -m gradlint ...)")
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise DistributedError(f"RANK={env.get('RANK')!r} / WORLD_SIZE={env.get('WORLD_SIZE')!r}: expected "
                               "integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is not within WORLD_SIZE={world}")
    return {"rank": rank, "world_size": world, "local_rank": local}


@dataclass
class DistRun:
    """The distributed run this process is part of."""

    rank: int
    world_size: int
    local_rank: int
    backend: str  # gloo | nccl
    device: str  # this rank's device for the measured pass
    timeout: float  # seconds any collective may wait
    sharding: str = "fsdp2"
    weights: list[str] = field(default_factory=list)  # per model: "init-once" | "per-shard-init"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"world_size": self.world_size, "backend": self.backend, "sharding": self.sharding}
        kinds = sorted(set(self.weights))
        if kinds:
            out["weights"] = kinds[0] if len(kinds) == 1 else "mixed"
        return out


_ACTIVE: DistRun | None = None


def active() -> DistRun | None:
    """The distributed run ``start`` opened in this process, if any."""
    return _ACTIVE


def _device_for(requested: str | None, local_rank: int) -> tuple[str, str]:
    """(device, backend): CUDA -> this rank's GPU and NCCL; the CPU -> gloo."""
    import torch

    req = (requested or "cpu").strip().lower()
    if req == "auto":
        req = "cuda" if torch.cuda.is_available() else "cpu"
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DistributedError(f"--device {requested}: CUDA is not available on this rank; use --device cpu (gloo)")
        if ":" in req:
            raise DistributedError(f"--device {requested}: under torchrun each rank takes cuda:LOCAL_RANK; "
                                   "give --device cuda (or limit the GPUs with CUDA_VISIBLE_DEVICES)")
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPUs are visible; "
                                   "start no more processes per node than GPUs")
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}", "nccl"
    return "cpu", "gloo"


def start(device_request: str | None, timeout: float, environ: Any = None) -> DistRun | None:
    """Open the default process group when launched by torchrun (None otherwise). A process group
    the caller opened already is used as it is."""
    global _ACTIVE
    env = torchrun_env(environ)
    if env is None:
        return None
    import datetime

    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed; install a build with it to use torchrun")
    device, backend = _device_for(device_request, env["local_rank"])
    if dist.is_initialized():
        backend = str(dist.get_backend())
    else:
        try:
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout),
                                    rank=env["rank"], world_size=env["world_size"])
        except Exception as e:  # noqa: BLE001 - a rendezvous problem: one line
            raise DistributedError(f"could not join the process group ({backend}, rank {env['rank']} of "
                                   f"{env['world_size']}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    _ACTIVE = DistRun(env["rank"], env["world_size"], env["local_rank"], backend, device, timeout)
    return _ACTIVE


def stop() -> None:
    """Close the process group ``start`` opened."""
    global _ACTIVE
    if _ACTIVE is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        # every rank done before any tears gloo down: a rank whose peer closed first dies in
        # teardown ("terminate called without an active exception", SIGABRT) in ~1 run of 10
        with contextlib.suppress(Exception):
            dist.barrier()
        dist.destroy_process_group()
    _ACTIVE = None


# -- tensors across ranks ------------------------------------------------------------------------

def local(t: Any) -> Any:
    """This rank's part of a tensor: a DTensor's local shard, any other tensor itself."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) else t


def is_sharded(t: Any) -> bool:
    """A DTensor split across ranks (some placement is a Shard)."""
    placements = getattr(t, "placements", None)
    return bool(placements) and any(type(p).__name__.endswith("Shard") for p in placements)


class Reducer:
    """Sums across the ranks of one process group, for the measured pass.

    ``replicated_plain``: ordinary (non-DTensor) gradients are the same on every rank (DDP keeps
    them in sync) and count once; otherwise they are per-rank parts and are summed first.
    """

    def __init__(self, group: Any = None, replicated_plain: bool = False, sharded_scale: float = 1.0) -> None:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise DistributedError("the default process group is not initialized: call "
                                   "torch.distributed.init_process_group(...) first (torchrun sets its environment)")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.backend = str(dist.get_backend(group))
        self.replicated_plain = replicated_plain
        # DDP and FSDP2 average gradients over the ranks; times the world size they are the sums a
        # one-process run over the whole batch gets
        self.sharded_scale = sharded_scale
        # NCCL reduces tensors on this rank's GPU; gloo on the CPU
        self.device = f"cuda:{__import__('torch').cuda.current_device()}" if self.backend == "nccl" else "cpu"

    # -- which rank counts a parameter's gradient ----------------------------------------------
    def counts_here(self, p: Any) -> bool:
        """Does this rank count ``p``'s gradient in the cross-rank sums? Shards: every rank
        (each holds its own entries). Replicated gradients: rank 0 only."""
        if is_sharded(p):
            return True
        if getattr(p, "placements", None) is not None or self.replicated_plain:
            return self.rank == 0
        return True

    def prepare_gradients(self, params: Sequence[Any]) -> None:
        """After the backward: rescale the gradients the engine averaged (shards, and DDP's
        replicated ones) to sums (``sharded_scale``), and sum the per-rank gradients of ordinary
        parameters outside any FSDP unit across ranks, so every rank holds their whole gradient
        (from then on they are replicated)."""
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            if self.sharded_scale != 1.0:
                for p in params:
                    averaged = is_sharded(p.grad) or (self.replicated_plain and getattr(p.grad, "placements", None) is None)
                    if p.grad is not None and averaged:
                        local(p.grad).mul_(self.sharded_scale)
            if self.replicated_plain:
                return
            for p in params:
                if p.grad is not None and getattr(p, "placements", None) is None:
                    g = p.grad.to(self.device)
                    dist.all_reduce(g, group=self.group)
                    p.grad.copy_(g)
        self.replicated_plain = True

    # -- collectives -----------------------------------------------------------------------------
    def sum(self, values: Sequence[float]) -> list[float]:
        """Elementwise sum over ranks (float64; NaN and inf propagate)."""
        import torch
        import torch.distributed as dist

        if not values:
            return []
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, group=self.group)
        return t.cpu().tolist()

    def max(self, values: Sequence[float]) -> list[float]:
        import torch
        import torch.distributed as dist

        if not values:
            return []
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return t.cpu().tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def same_everywhere(self, what: str, value: Any) -> None:
        """Raise the same ``DistributedError`` on every rank when ranks disagree on ``value``."""
        values = self.gather(value)
        if any(v != values[0] for v in values):
            raise DistributedError(f"the ranks disagree on {what}: " + ", ".join(
                f"rank {i}: {v}" for i, v in enumerate(values)))


# -- batches ---------------------------------------------------------------------------------------

def split_batch(args: tuple, kwargs: dict, rank: int, world: int) -> tuple[tuple, dict, int]:
    """This rank's rows of the global batch: every tensor whose first dimension is the batch is cut
    along it into ``world`` equal parts. (local args, local kwargs, global batch)."""
    import torch

    tensors = [v for v in list(args) + list(kwargs.values()) if isinstance(v, torch.Tensor) and v.dim() > 0]
    if not tensors:
        raise DistributedError("the example inputs hold no tensor with a batch dimension to split across ranks")
    batch = int(tensors[0].shape[0])
    if batch % world:
        raise DistributedError(f"the global batch of {batch} does not split evenly across {world} ranks; use a "
                               f"--batch-size that is a multiple of {world} (or example_inputs() with such a batch)")
    size = batch // world

    def part(v: Any) -> Any:
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == batch:
            return v[rank * size:(rank + 1) * size]
        return v

    return tuple(part(a) for a in args), {k: part(v) for k, v in kwargs.items()}, batch


# -- sharding ----------------------------------------------------------------------------------

def fully_shard_model(model: Any, units: Sequence[str], device: str) -> int:
    """``fully_shard`` each named unit, then the root, on a 1-D mesh over every rank. FSDP2
    reduce-scatters gradients as averages over the ranks (``Reducer(sharded_scale=world)`` makes
    them sums again). Returns the number of units (root included)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch < 2.6 kept it under _composable
        from torch.distributed._composable.fsdp import fully_shard  # type: ignore[no-redef]

    mesh = init_device_mesh(device.split(":")[0], (dist.get_world_size(),))
    n = 0
    for name in units:
        fully_shard(model.get_submodule(name), mesh=mesh)
        n += 1
    fully_shard(model, mesh=mesh)
    return n + 1


def wrapped_kind(model: Any) -> str | None:
    """``"ddp"``, ``"fsdp2"``, ``"fsdp1"``, ``"mixed"`` or None for a plain module."""
    kinds = set()
    for m in model.modules():
        name = type(m).__name__
        if name == "DistributedDataParallel":
            kinds.add("ddp")
        elif name == "FullyShardedDataParallel":
            kinds.add("fsdp1")
        elif type(m).__mro__[1].__name__ == "FSDPModule" or any(c.__name__ == "FSDPModule" for c in type(m).__mro__):
            kinds.add("fsdp2")
    if not kinds:
        return None
    if len(kinds) > 1:
        return "mixed"
    return kinds.pop()

