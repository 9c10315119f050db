"""Weights the forward computes from other parameters: weight norm, spectral norm, parametrizations.

``torch.nn.utils.weight_norm(conv)`` replaces ``conv.weight`` by ``weight_g * weight_v / ||weight_v||``
(recomputed in a forward pre-hook); ``torch.nn.utils.parametrizations.weight_norm`` does the same
with ``parametrizations.weight.original0`` (g) and ``original1`` (v); spectral norm divides
``weight_orig`` by its largest singular value. The layer still multiplies by a matrix of the
weight's shape: capture records that *effective* weight as ``<module>.<name>`` (not a parameter)
and the trainable tensor of the same shape (v, or the original) as the layer's weight for the
contract's gradient RMS; the estimator reads the effective weight's statistics and routes its
gradient to that tensor (docs/estimator.md, "Reparametrized weights").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WEIGHT_NORM, SPECTRAL_NORM, PARAMETRIZATION = "weight_norm", "spectral_norm", "parametrization"


@dataclass(frozen=True)
class Reparam:
    kind: str  # weight_norm | spectral_norm | parametrization
    name: str  # the attribute the forward reads ("weight")
    direction: str  # local name of the trainable tensor with the weight's shape (v, or the original)
    scale: str | None = None  # weight norm's g (per-row norms), local name
    dim: int = 0  # weight norm's dim

    def effective(self, module_name: str) -> str:
        """The name capture gives the computed weight (never a parameter name)."""
        return f"{module_name}.{self.name}" if module_name else self.name


def reparametrized(module: Any) -> dict[str, Reparam]:
    """attribute name -> how the module computes it from its parameters (empty for a plain module)."""
    out: dict[str, Reparam] = {}
    hooks = getattr(module, "_forward_pre_hooks", None) or {}
    for hook in list(hooks.values()):
        cls = type(hook).__name__
        mod = type(hook).__module__
        name = getattr(hook, "name", None)
        if not isinstance(name, str):
            continue
        if cls == "WeightNorm" and mod.startswith("torch.nn.utils"):
            out[name] = Reparam(WEIGHT_NORM, name, f"{name}_v", f"{name}_g", int(getattr(hook, "dim", 0) or 0))
        elif cls == "SpectralNorm" and mod.startswith("torch.nn.utils"):
            out[name] = Reparam(SPECTRAL_NORM, name, f"{name}_orig")
    plists = getattr(module, "parametrizations", None)
    if plists is not None and hasattr(plists, "items"):
        for name, plist in plists.items():
            kinds = [type(p).__name__ for p in plist]
            if "_WeightNorm" in kinds and hasattr(plist, "original1"):
                dim = next((getattr(p, "dim", 0) for p in plist if type(p).__name__ == "_WeightNorm"), 0)
                out[name] = Reparam(WEIGHT_NORM, name, f"parametrizations.{name}.original1",
                                    f"parametrizations.{name}.original0", int(dim or 0))
            elif hasattr(plist, "original"):
                kind = SPECTRAL_NORM if kinds == ["_SpectralNorm"] else PARAMETRIZATION
                out[name] = Reparam(kind, name, f"parametrizations.{name}.original")
    return out
