"""Building a model, running its constructor once: on the CPU while its allocations stay under
``materialize-limit`` (then a weightless meta-device twin is copied from it for capture, without
running the constructor again), else on the meta device (no memory, any size). The construction
site of every submodule and the init code's traces are recorded while it runs. A model the
import already built (``model = Net()`` at module level) is taken as it is."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..ir.errors import StageError, stage_error
from .discover import Candidate
from .importer import running_as_script, search_path, user_stdout_to_stderr
from .limits import PASS_THROUGH


def set_training(model: Any, mode: bool = True) -> Any:
    """``nn.Module.train(model, mode)``: a model's own ``train()`` may mean something else
    (ultralytics' ``YOLO.train()`` starts a training run and downloads a dataset)."""
    import torch.nn as nn

    return nn.Module.train(model, mode)


def call_factory(candidate: Candidate) -> Any:
    return candidate.factory()


def count_parameters(model: Any) -> int:
    """Parameters of ``model``; a lazy module's not yet materialized ones count as none."""
    from torch.nn.parameter import is_lazy

    return sum(p.numel() for p in model.parameters() if not is_lazy(p))


@dataclass
class BuiltModel:
    candidate: Candidate
    model: Any  # the module rules read weights from: materialized on CPU or on meta
    meta_model: Any | None  # the weightless twin used for capture (may be ``model`` itself)
    materialized: bool
    sites: dict  # qualified module name -> Location where the user constructed it
    parameters: int
    notes: list[str] = field(default_factory=list)
    init_touched: set[str] = field(default_factory=set)  # parameters init code touched while building
    saw_custom_init: bool = False
    # meta builds: parameter -> the value law init code left in it (initlaw.Law), None when unknown;
    # absent when no init code touched it (or torch's default init came last). None: not recorded.
    init_laws: dict[str, Any] | None = None


class TooLarge(BaseException):
    """The constructor allocated more than materialize-limit elements on the CPU. A BaseException,
    so that a constructor's ``except Exception:`` does not swallow it."""


def allocation_guard(limit: int) -> Any:
    """A dispatch mode that stops a construction before it allocates more than ``limit`` tensor
    elements in all (checked before each allocation, so one huge embedding is never made)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class AllocationGuard(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.total = 0
            self.tripped = False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            n = new_elements(func, args)
            if n:
                if self.tripped or self.total + n > limit:
                    self.tripped = True  # stays tripped: a swallowed TooLarge cannot let it go on
                    raise TooLarge(f"more than {limit:,} elements")
                self.total += n
            return func(*args, **kwargs)

    from .lazy_dynamo import defer_one

    defer_one(AllocationGuard.__dict__["__torch_dispatch__"])  # torch wrapped it to import torch._dynamo on first call
    return AllocationGuard()


_FACTORIES = frozenset({"empty", "empty_strided", "zeros", "ones", "full", "rand", "randn", "randint", "normal",
                        "new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full"})
_LIKE = frozenset({"empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like"})


def new_elements(func: Any, args: tuple) -> int:
    """Elements a factory op is about to allocate (0 for other ops)."""
    import math

    import torch

    name = func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else ""
    if name in _LIKE and args and isinstance(args[0], torch.Tensor):
        return args[0].numel()
    if name not in _FACTORIES:
        return 0
    if name == "normal" and any(isinstance(a, torch.Tensor) for a in args):
        return 0  # normal(mean_tensor, std): shaped like its inputs, already counted
    for a in args:
        if isinstance(a, (list, tuple, torch.Size)) and all(isinstance(d, int) for d in a):
            return math.prod(a)
    return 0


def meta_twin(model: Any) -> Any | None:
    """A copy of ``model`` on the meta device, made without running its constructor again: every
    tensor it holds (parameters, buffers, plain tensor attributes) is replaced by an empty meta
    tensor of the same shape; sharing (tied weights) is kept. None when the model cannot be copied."""
    import torch
    import torch.nn as nn

    memo: dict[int, Any] = {}
    try:
        for m in model.modules():
            for value in list(m._parameters.values()) + list(m._buffers.values()) + list(vars(m).values()):
                if isinstance(value, torch.Tensor) and id(value) not in memo:
                    empty = torch.empty_like(value, device="meta")
                    memo[id(value)] = (nn.Parameter(empty, requires_grad=value.requires_grad)
                                       if isinstance(value, nn.Parameter) else empty)
        twin = copy.deepcopy(model, memo)
    except Exception:  # noqa: BLE001 - a module holding something that cannot be copied
        return None
    set_training(twin, model.training)
    return twin


def build_model(candidate: Candidate, materialize_limit: int, need_weights: bool = True,
                device: str = "cpu", twin: bool = True) -> BuiltModel:
    """Build the candidate, running its constructor once in the usual case.

    On ``device`` under an allocation guard first; past ``materialize-limit`` (or when weights are
    not needed) on the meta device instead. ``twin``: also give a meta-device copy for capture.
    """
    import torch
    import torch.nn as nn

    from .init_recorder import InitRecorder
    from .provenance import ConstructionRecorder

    if candidate.prebuilt is not None:
        return _take_prebuilt(candidate, twin)

    def construct(dev: str, limit: int | None = None):
        guard = allocation_guard(limit) if limit is not None else None
        with search_path(candidate.search_path), running_as_script(candidate.target.path), \
                ConstructionRecorder() as rec, torch.device(dev), user_stdout_to_stderr(), \
                InitRecorder(laws=dev == "meta") as irec:
            if guard is None:
                obj = call_factory(candidate)
            else:
                with guard:
                    obj = call_factory(candidate)
        if guard is not None and guard.tripped:
            raise TooLarge("an allocation was refused")
        if not isinstance(obj, nn.Module):
            raise StageError(
                "build", f"{candidate.target.spec} returned {type(obj).__name__}, not an nn.Module",
                candidate.location, "return the model from the factory",
            )
        # Keyed by qualified name, so the meta twin and the materialized model share one map.
        sites = {name: rec.sites.get(m) for name, m in obj.named_modules()}
        # The root was made by gradlint's call, not the user's code: point at its definition.
        sites[""] = candidate.location
        init = (irec.touched_names(obj), irec.saw_custom_init, irec.laws_by_name(obj) if irec.track else None)
        return obj, {k: v for k, v in sites.items() if v is not None}, init

    def failed(e: BaseException) -> StageError:
        if isinstance(e, StageError):
            return e
        return stage_error("build", e, fallback=candidate.location)

    notes: list[str] = []
    if need_weights:
        try:
            model, sites, init = construct(device, materialize_limit)
        except TooLarge:
            pass  # too big to materialize: build on meta below
        except PASS_THROUGH:
            raise
        except BaseException as e:  # noqa: BLE001 - user code may raise anything
            raise failed(e) from None
        else:
            set_training(model)
            meta = meta_twin(model) if twin else None
            if twin and meta is None:
                notes.append("the model could not be copied to the meta device; captured on the CPU")
            return BuiltModel(candidate, model, meta, True, sites, count_parameters(model), notes, *init)

    try:
        meta_model, sites, init = construct("meta")
    except PASS_THROUGH:
        raise
    except StageError:
        raise
    except BaseException as e:  # noqa: BLE001
        if not need_weights:
            raise failed(e) from None
        # Too big for the guard and not buildable on meta (a constructor calling .item()): on device.
        notes.append(f"could not build on the meta device ({type(e).__name__}); built on {device}")
        try:
            model, sites, init = construct(device)
        except PASS_THROUGH:
            raise
        except BaseException as e2:  # noqa: BLE001
            raise failed(e2) from None
        set_training(model)
        return BuiltModel(candidate, model, None, True, sites, count_parameters(model), notes, *init)
    set_training(meta_model)
    n_params = count_parameters(meta_model)
    if need_weights and n_params <= materialize_limit:
        # Temporaries, not parameters, went over the guard: the model itself fits.
        try:
            model, sites, init = construct(device)
        except PASS_THROUGH:
            raise
        except BaseException as e:  # noqa: BLE001
            raise failed(e) from None
        set_training(model)
        return BuiltModel(candidate, model, meta_model, True, sites, count_parameters(model), notes, *init)
    if need_weights:
        notes.append(
            f"{n_params:,} parameters exceed materialize-limit ({materialize_limit:,}): "
            "weights not materialized, init read from the init code (recorded) and the module types"
        )
    return BuiltModel(candidate, meta_model, meta_model, False, sites, n_params, notes, *init)


def _take_prebuilt(candidate: Candidate, twin: bool) -> BuiltModel:
    """A model the import built at module level: used as it is (its constructor already ran)."""
    model = candidate.prebuilt
    sites = candidate.import_sites or {}
    named = {name: sites.get(m) for name, m in model.named_modules()}
    named[""] = candidate.location
    on_meta = any(p.device.type == "meta" for p in model.parameters())
    set_training(model)
    meta = model if on_meta else (meta_twin(model) if twin else None)
    notes = ["built by the file at import (a module-level instance), analysed as it is"]
    return BuiltModel(candidate, model, meta, not on_meta, {k: v for k, v in named.items() if v is not None},
                      count_parameters(model), notes)
