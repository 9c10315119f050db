"""Building a model: on the meta device first (no memory, any size), materialized on the CPU when
small enough, with the construction site of every submodule and the init code's traces recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir.errors import StageError, stage_error
from .discover import Candidate
from .importer import user_stdout_to_stderr
from .limits import PASS_THROUGH


def call_factory(candidate: Candidate) -> Any:
    t = candidate.target
    return candidate.factory(*t.args, **dict(t.kwargs))


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


def build_model(candidate: Candidate, materialize_limit: int, need_weights: bool = True,
                device: str = "cpu") -> BuiltModel:
    """Build on the meta device (no memory), then materialize when small enough.

    A constructor that cannot run on meta (one that calls ``.item()``, say) is built on
    ``device`` directly.
    """
    import torch
    import torch.nn as nn

    from .init_recorder import InitRecorder
    from .provenance import ConstructionRecorder

    def construct(dev: str):
        with ConstructionRecorder() as rec, torch.device(dev), user_stdout_to_stderr(), \
                InitRecorder(laws=dev == "meta") as irec:
            obj = call_factory(candidate)
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

    notes: list[str] = []
    meta_model = None
    try:
        meta_model, sites, init = construct("meta")
    except StageError:
        raise
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, PASS_THROUGH):
            raise
        notes.append(f"could not build on the meta device ({type(e).__name__}); built on {device}")
    if meta_model is not None:
        n_params = count_parameters(meta_model)
        if not need_weights or n_params > materialize_limit:
            if need_weights:
                notes.append(
                    f"{n_params:,} parameters exceed materialize-limit ({materialize_limit:,}): "
                    "weights not materialized, init read from the init code (recorded) and the module types"
                )
            return BuiltModel(candidate, meta_model, meta_model, False, sites, n_params, notes, *init)
    try:
        model, sites, init = construct(device)
    except StageError:
        raise
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, PASS_THROUGH):
            raise
        raise stage_error("build", e, fallback=candidate.location) from None
    model.train()
    if meta_model is not None:
        meta_model.train()
    return BuiltModel(candidate, model, meta_model, True, sites, count_parameters(model), notes, *init)
