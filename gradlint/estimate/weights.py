"""Weight statistics: measured from the tensors when the model is materialized (so a custom init is
seen), else, when it was built on the meta device, from the value law the init code left in each
parameter (``initcheck.InitRecorder``: ``normal_(std=0.01)``, ``zeros_``...) or, where no init code
ran, from the init formulas of PyTorch's modules (docs/estimator.md, "PyTorch's default
initializations").
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TensorStats:
    shape: tuple[int, ...]
    second: float  # E[w^2]
    mean: float  # E[w]
    zero: bool  # every entry exactly zero (a structural zero)
    measured: bool  # read from the tensor (True) or from an init formula (False)
    source: str  # how we know: "weights", "default init of Linear", ...

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    @property
    def fan_in(self) -> int:
        """torch.nn.init's fan_in: size(1) * receptive field."""
        return fan_in(self.shape)


def fan_in(shape: tuple[int, ...]) -> int:
    if len(shape) < 2:
        return 1
    return shape[1] * (math.prod(shape[2:]) if len(shape) > 2 else 1)


class WeightSource:
    """Statistics of the model's parameters by canonical name (``named_parameters()``)."""

    def __init__(self, model: Any, materialized: bool, touched: set[str] | None = None,
                 laws: dict[str, Any] | None = None) -> None:
        self.model = model
        self.materialized = materialized
        self.touched = touched or set()
        # recorded while building on meta: name -> initlaw.Law (None: unknown); a touched name that
        # is absent had torch's default init last. None: not recorded (touched is all we know).
        self.laws = laws
        self._params = dict(model.named_parameters())
        by_id = {id(p): name for name, p in self._params.items()}
        # canonical parameter name -> (owning module, local name); a tied parameter counts once
        self._owner: dict[str, tuple[str, str]] = {}
        for mod_name, mod in model.named_modules():
            for local, p in mod.named_parameters(recurse=False):
                self._owner.setdefault(by_id.get(id(p), f"{mod_name}.{local}"), (mod_name, local))
        self._modules = dict(model.named_modules())
        self._cache: dict[tuple[str, int, int], TensorStats | None] = {}
        self.init_range = _hf_initializer_range(model)
        self.xavier_scope = [n for n, m in self._modules.items() if type(m).__name__ == "Transformer"
                             and type(m).__module__.startswith("torch.nn")]
        self.unknown: list[str] = []  # parameters whose values we could not know (meta, custom)
        self.overrides: dict[str, TensorStats] = {}  # counterfactual statistics, by parameter name
        # effective weights the forward computes (weight norm, spectral norm): name -> (module, Reparam,
        # canonical name of the trainable tensor of the same shape, of weight norm's g)
        self._effective: dict[str, tuple[Any, Any, str, str | None]] = {}
        self._routes: dict[str, tuple[str, float]] = {}
        self._find_effective()

    def with_overrides(self, overrides: dict[str, TensorStats]) -> "WeightSource":
        """The same model with some parameters' statistics replaced (what if they had moved?)."""
        other = copy.copy(self)
        other.overrides = {**self.overrides, **overrides}
        other._cache = {}
        other._routes = {}
        other.unknown = []
        return other

    def _find_effective(self) -> None:
        from ..capture.reparam import reparametrized

        by_id = {id(p): name for name, p in self._params.items()}
        for mod_name, mod in self._modules.items():
            for name, rp in reparametrized(mod).items():
                direction = _local_param(mod, rp.direction)
                if direction is None or id(direction) not in by_id:
                    continue
                scale = _local_param(mod, rp.scale) if rp.scale else None
                self._effective[rp.effective(mod_name)] = (mod, rp, by_id[id(direction)],
                                                           by_id.get(id(scale)) if scale is not None else None)

    def route(self, name: str, energy: float) -> tuple[str, float]:
        """A weight-gradient energy booked to the parameter training updates: an effective weight's
        goes to its trainable tensor. Weight norm w = g v/||v|| gives dL/dv = (g/||v||) (I - v v^T/||v||^2)
        dL/dw per row, energy (g/||v||)^2 (1 - 1/fan_in); spectral norm w = v/sigma gives ~1/sigma^2."""
        if name not in self._effective:
            return name, energy
        if name not in self._routes:
            mod, rp, direction, scale = self._effective[name]
            self._routes[name] = (direction, self._route_factor(rp, direction, scale))
        target, factor = self._routes[name]
        return target, energy * factor

    def _route_factor(self, rp: Any, direction: str, scale: str | None) -> float:
        from ..capture.reparam import SPECTRAL_NORM, WEIGHT_NORM

        shape = self.shape(direction)
        if rp.kind == WEIGHT_NORM:
            fan = max(math.prod(shape) // max(shape[rp.dim] if len(shape) > rp.dim else 1, 1), 1)
            ratio = 1.0
            if self.materialized and scale is not None:
                import torch

                with torch.no_grad():
                    v = self._params[direction].detach().double()
                    g = self._params[scale].detach().double().reshape(-1)
                    dims = [d for d in range(v.dim()) if d != rp.dim]
                    norms = v.pow(2).sum(dim=dims).sqrt().reshape(-1) if dims else v.abs().reshape(-1)
                    if norms.numel() == g.numel() and bool((norms > 0).all()):
                        ratio = float((g / norms).pow(2).mean())
            return ratio * (1.0 - 1.0 / fan)
        if rp.kind == SPECTRAL_NORM:
            sigma = self._sigma(direction, shape)
            return 1.0 / (sigma * sigma) if sigma > 0 else 1.0
        return 1.0

    def _sigma(self, direction: str, shape: tuple[int, ...]) -> float:
        """The largest singular value of the (rows, rest) matrix: power iteration on real weights,
        the random-matrix estimate on meta."""
        from .bound import expected_spectral_norm, spectral_norm

        rows = shape[0] if shape else 1
        cols = max(math.prod(shape) // max(rows, 1), 1)
        t = self.tensor(direction)
        if t is not None:
            return spectral_norm(t.reshape(rows, cols), rows)
        st = self.stats(direction)
        return expected_spectral_norm(st.second, rows, cols, 1, st.mean) if st is not None else 1.0

    def numel(self, name: str) -> int:
        p = self._params.get(name)
        return int(p.numel()) if p is not None else 0

    def shape(self, name: str) -> tuple[int, ...]:
        p = self._params.get(name)
        return tuple(p.shape) if p is not None else ()

    def stats(self, name: str | None, block: int = 0, blocks: int = 1) -> TensorStats | None:
        """Stats of a parameter, or of row-block ``block`` of ``blocks`` (an LSTM's gates)."""
        if name is not None and name in self._effective:
            key = (name, block, blocks)
            if key not in self._cache:
                self._cache[key] = self._effective_stats(name, block, blocks)
            return self._cache[key]
        if name is None or name not in self._params:
            return None
        if name in self.overrides:
            st = self.overrides[name]
            if blocks > 1 and st.shape and st.shape[0] % blocks == 0:  # one gate's rows
                return TensorStats((st.shape[0] // blocks, *st.shape[1:]), st.second, st.mean, st.zero,
                                   st.measured, st.source)
            return st
        key = (name, block, blocks)
        if key not in self._cache:
            self._cache[key] = self._measure(name, block, blocks) if self.materialized else self._formula(name, block, blocks)
        return self._cache[key]

    def tensor(self, name: str) -> Any:
        """The parameter itself (materialized models only), for spectral norms."""
        if name in self._effective:
            return self._effective_tensor(name)
        return self._params.get(name) if self.materialized and name not in self.overrides else None

    # -- effective (computed) weights ----------------------------------------------------------
    def _effective_tensor(self, name: str) -> Any:
        """The weight the forward multiplies by, computed from its parameters (materialized only)."""
        if not self.materialized:
            return None
        import torch

        from ..capture.reparam import WEIGHT_NORM

        mod, rp, direction, scale = self._effective[name]
        if direction in self.overrides or scale in self.overrides:
            return None  # a counterfactual: the statistics, not the tensors, say what it is
        with torch.no_grad():
            if rp.kind == WEIGHT_NORM and scale is not None:
                # computed here: the attribute the old-style hook sets is refreshed only by a forward
                return torch._weight_norm(self._params[direction].detach(), self._params[scale].detach(), rp.dim)
            try:
                value = getattr(mod, rp.name)
            except Exception:  # noqa: BLE001 - a parametrization that cannot run outside forward
                return None
            return value.detach() if getattr(value, "is_meta", True) is False else None

    def _effective_stats(self, name: str, block: int, blocks: int) -> TensorStats | None:
        from ..capture.reparam import SPECTRAL_NORM, WEIGHT_NORM

        mod, rp, direction, scale = self._effective[name]
        t = self._effective_tensor(name)
        if t is not None:
            if blocks > 1 and t.dim() >= 1 and t.shape[0] % blocks == 0:
                t = t.reshape(blocks, -1, *t.shape[1:])[block]
            t = t.double()
            second = float(t.pow(2).mean()) if t.numel() else 0.0
            mean = float(t.mean()) if t.numel() else 0.0
            return TensorStats(tuple(t.shape), second, mean, second == 0.0, True, f"weights ({rp.kind})")
        base = self.stats(direction, block, blocks)
        if base is None:
            return None
        if rp.kind == WEIGHT_NORM:  # at init g = ||v|| per row: the weight is v itself
            return TensorStats(base.shape, base.second, base.mean, base.zero, False, f"{base.source} ({rp.kind}: w = v)")
        if rp.kind == SPECTRAL_NORM:
            sigma = self._sigma(direction, self.shape(direction))
            k = 1.0 / (sigma * sigma) if sigma > 0 else 1.0
            return TensorStats(base.shape, base.second * k, base.mean * math.sqrt(k), base.zero, False,
                               f"{base.source} / sigma_max^2 (spectral norm)")
        self.unknown.append(name)
        return TensorStats(base.shape, base.second, base.mean, base.zero, False, f"{base.source} (parametrization assumed the identity)")

    # -- measured --------------------------------------------------------------------------
    def _measure(self, name: str, block: int, blocks: int) -> TensorStats:
        import torch

        p = self._params[name]
        with torch.no_grad():
            t = p.detach()
            if blocks > 1 and t.dim() >= 1 and t.shape[0] % blocks == 0:
                t = t.reshape(blocks, -1, *t.shape[1:])[block]
            t = t.double()
            second = float(t.pow(2).mean()) if t.numel() else 0.0
            mean = float(t.mean()) if t.numel() else 0.0
        return TensorStats(tuple(t.shape), second, mean, second == 0.0, True, "weights")

    # -- init formulas (meta device) ---------------------------------------------------------
    def _formula(self, name: str, block: int, blocks: int) -> TensorStats | None:
        import torch.nn as nn

        p = self._params[name]
        full = tuple(p.shape)
        shape = full
        if blocks > 1 and shape and shape[0] % blocks == 0:
            shape = (shape[0] // blocks, *shape[1:])
        mod_name, local = self._owner.get(name, (name.rpartition(".")[0], name.rpartition(".")[2]))
        mod = self._modules.get(mod_name)
        parent = self._modules.get(mod_name.rpartition(".")[0]) if mod_name else None
        is_weight = local.startswith("weight") or local.endswith("proj_weight")

        law = self.laws.get(name) if self.laws else None
        if law is not None:
            # the init code's own law beats any formula (a row block of it has the same law)
            return TensorStats(shape, law.second, law.mean, law.zero, False, f"recorded init: {law.describe()}")
        unknown = name in self.touched and (self.laws is None or name in self.laws)

        def out(second: float, mean: float = 0.0, how: str = "") -> TensorStats:
            if unknown:
                self.unknown.append(name)
                how = f"{how}; initialization code touched it, its values are unknown on the meta device"
            return TensorStats(shape, second, mean, second == 0.0 and mean == 0.0, False, how)

        if self.xavier_scope and any(name.startswith(s + ".") for s in self.xavier_scope) and len(full) > 1:
            fan_out = full[0] * (math.prod(full[2:]) if len(full) > 2 else 1)
            return out(2.0 / (fan_in(full) + fan_out), how="xavier_uniform_ (nn.Transformer)")
        hf_layer = isinstance(mod, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd)) or type(mod).__name__ == "Conv1D"
        if self.init_range is not None and hf_layer:
            if is_weight:
                return out(self.init_range ** 2, how=f"normal_(std={self.init_range}) (config.initializer_range)")
            return out(0.0, how="zeros (Hugging Face _init_weights)")
        if isinstance(mod, nn.MultiheadAttention):
            e = mod.embed_dim
            if local == "in_proj_weight":
                return out(2.0 / (e + 3 * e), how="xavier_uniform_ (MultiheadAttention)")
            if local in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                return out(2.0 / (full[0] + full[1]), how="xavier_uniform_ (MultiheadAttention)")
            if local in ("bias_k", "bias_v"):
                return out(2.0 / (1 + e), how="xavier_normal_")
            return out(0.0, how="zeros (MultiheadAttention)")
        if isinstance(mod, nn.Linear) and isinstance(parent, nn.MultiheadAttention) and local == "bias":
            return out(0.0, how="zeros (MultiheadAttention out_proj)")
        if isinstance(mod, (nn.Linear, nn.modules.conv._ConvNd)):
            return out(1.0 / (3 * fan_in(tuple(mod.weight.shape))),
                       how=f"default init of {type(mod).__name__} (U(+-1/sqrt(fan_in)))")
        if isinstance(mod, nn.Bilinear):
            return out(1.0 / (3 * mod.weight.shape[1]), how="default init of Bilinear")
        if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
            return out(1.0, how="default init of Embedding (N(0, 1))")
        if isinstance(mod, (nn.RNNBase, nn.RNNCellBase)):
            return out(1.0 / (3 * mod.hidden_size), how=f"default init of {type(mod).__name__} (U(+-1/sqrt(H)))")
        if isinstance(mod, nn.PReLU):
            return out(0.0625, 0.25, how="PReLU init 0.25")
        norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm) + (
            (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
        if isinstance(mod, norm_types) or "norm" in type(mod).__name__.lower():
            if is_weight:
                return out(1.0, 1.0, how="ones (normalization scale)")
            return out(0.0, how="zeros (normalization shift)")
        self.unknown.append(name)
        return None


def _local_param(module: Any, local: str | None) -> Any:
    """``module``'s parameter at a dotted local name (``parametrizations.weight.original1``)."""
    if not local:
        return None
    obj = module
    for part in local.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _hf_initializer_range(model: Any) -> float | None:
    """Hugging Face models re-initialize Linear/Embedding weights as N(0, initializer_range^2)."""
    cfg = getattr(model, "config", None)
    r = getattr(cfg, "initializer_range", None)
    if isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 and any(
            c.__module__.startswith("transformers.") for c in type(model).__mro__):
        return float(r)
    return None
