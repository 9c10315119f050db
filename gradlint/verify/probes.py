"""Hooks for the measured pass: the error signal δ at each weight layer's output, and the
pre-activations of sigmoid/tanh-family and ReLU-family activations.

Every statistic is reduced as the tensor goes by (activation counts stay 0-d tensors until the
end; error-signal norms become floats in the backward hook); nothing the size of an activation or
a gradient is retained, so the pass's peak memory is the model's own.
Activation modules are seen through forward pre-hooks (their input is the pre-activation);
functional calls (``torch.tanh(x)`` in a ``forward``) through a ``TorchFunctionMode`` that only
looks at calls made outside activation modules, so ``nn.ReLU`` is not counted twice.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

from ..ir.ops import RELU_FAMILY, SATURATING
from .measurement import ActivationSite

SAMPLE = 1 << 18  # activation entries read per call for the saturated/inactive shares


def _first_tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    if isinstance(value, dict):
        for v in value.values():
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _site_location(sites: dict, name: str):
    """The module's construction site, else its nearest ancestor's (deep-copied children)."""
    while True:
        loc = sites.get(name)
        if loc is not None or not name:
            return loc
        name = name.rpartition(".")[0]


class _Accumulator:
    """Per-site running sums, as 0-d tensors (no device sync until ``finish``). Counting uses
    ``count_nonzero``: summing a bool tensor converts it to int64 first, several times slower."""

    def __init__(self, site: ActivationSite, bounds: tuple[float, float] | None, keep_units: bool = False) -> None:
        self.site = site
        self.bounds = bounds  # hardtanh's (min_val, max_val)
        self.sums: dict[str, Any] = {}
        # one rank of several: keep each call's per-unit "active for some example" mask, since a
        # unit is dead only when no rank's examples switch it on (OR-ed across ranks at the end)
        self.keep_units = keep_units
        self.alive: list[Any] = []

    def add(self, key: str, value: Any) -> None:
        prev = self.sums.get(key)
        self.sums[key] = value if prev is None else prev + value

    def observe(self, z: Any) -> None:
        """Shares are read from an evenly strided sample of at most ``SAMPLE`` entries (exact
        for smaller tensors); dead units need every example, so they use a max over the batch."""
        import torch

        site = self.site
        with torch.no_grad():
            z = z.detach()
            site.calls += 1
            n = z.numel()
            flat = z.reshape(-1)
            step = max(1, -(-n // SAMPLE))
            sample = flat[::step] if step > 1 else flat
            scale = n / sample.numel() if sample.numel() else 0.0
            site.count += n
            if site.family == "saturating":
                if site.op == "hardtanh":
                    lo, hi = self.bounds or (-1.0, 1.0)
                    flat_region = (sample < lo) | (sample > hi)
                elif site.op == "hardsigmoid":
                    flat_region = sample.abs() >= 3.0  # hardsigmoid is x/6 + 1/2 clipped to [0, 1] at +-3
                elif site.op == "logsigmoid":
                    flat_region = sample > site.threshold  # flat only on the positive side
                else:
                    flat_region = sample.abs() > site.threshold
                self.add("saturated", torch.count_nonzero(flat_region) * scale)
                return
            off = sample <= 0 if site.op == "relu" else (sample <= 0) | (sample >= 6)
            self.add("inactive", torch.count_nonzero(off) * scale)
            if z.dim() >= 2 and z.shape[0] > 1:
                # a unit = one output coordinate; dead when inactive for every example of the batch
                site.units += n // z.shape[0]
                if site.op == "relu":
                    dead = z.amax(dim=0) <= 0
                else:
                    lo_, hi_ = torch.aminmax(z, dim=0)
                    dead = (hi_ <= 0) | (lo_ >= 6)
                if self.keep_units:
                    self.alive.append((~dead).reshape(-1).cpu())
                else:
                    self.add("dead_units", torch.count_nonzero(dead))

    def finish(self) -> ActivationSite:
        for key, value in self.sums.items():
            setattr(self.site, key, int(round(float(value))))
        return self.site


class Probes:
    """Attach with ``with probes.attached(model):`` around the forward; read after backward."""

    def __init__(self, layer_modules: list[str], sites: dict, saturation_threshold: float,
                 order_modules: set[str] | None = None, functional: bool = True, keep_units: bool = False) -> None:
        self.layer_modules = list(layer_modules)
        self.keep_units = keep_units  # one rank of several: per-unit masks for the cross-rank dead count
        self._reduced: list[ActivationSite] | None = None
        self.functional = functional  # watch functional calls (costs a Python call per torch op)
        self.sites = sites
        self.threshold = saturation_threshold
        self.order_modules = set(order_modules or ())  # also record when these finish (zero-init owners)
        # results
        self.delta_sq: dict[str, list[float]] = {m: [] for m in self.layer_modules}
        self.delta_nonfinite: dict[str, list[int]] = {m: [] for m in self.layer_modules}
        self.delta_numel: dict[str, int] = {m: 0 for m in self.layer_modules}
        self.calls: dict[str, int] = {m: 0 for m in self.layer_modules}
        self.finish_order: dict[str, int] = {}  # module -> index of its first finished forward
        self._acc: dict[str, _Accumulator] = {}
        self._inside_activation = 0
        self._last_layer: str | None = None

    # -- δ at the weight layers' outputs -------------------------------------------------------
    def _layer_hook(self, name: str):
        def hook(module: Any, inputs: Any, output: Any) -> None:
            self._finished(name)
            if name not in self.calls:
                return
            self.calls[name] += 1
            self._last_layer = name
            out = _first_tensor(output)
            if out is None or not out.requires_grad or not out.is_floating_point():
                return
            self.delta_numel[name] += out.numel()

            def on_grad(grad: Any) -> None:
                import math

                import torch

                from .measure import square_sum

                with torch.no_grad():
                    sq = square_sum(grad)
                    self.delta_sq[name].append(sq)
                    if not math.isfinite(sq):
                        g = grad.detach()
                        self.delta_nonfinite[name].append(g.numel() - int(torch.count_nonzero(torch.isfinite(g))))

            out.register_hook(on_grad)

        return hook

    def _finished(self, name: str) -> None:
        if name not in self.finish_order:
            self.finish_order[name] = len(self.finish_order)

    def _order_hook(self, name: str):
        return lambda module, inputs, output: self._finished(name)

    # -- activations ---------------------------------------------------------------------------
    def _accumulator(self, key: str, op: str, location: Any, module: str | None,
                     bounds: tuple[float, float] | None = None) -> _Accumulator:
        acc = self._acc.get(key)
        if acc is None:
            family = "saturating" if op in SATURATING else "relu"
            site = ActivationSite(key, op, family, location, module, self._last_layer, self.threshold)
            acc = self._acc[key] = _Accumulator(site, bounds, self.keep_units)
        return acc

    def _act_pre(self, name: str, op: str | None, bounds: tuple[float, float] | None):
        def pre(module: Any, inputs: Any) -> None:
            self._inside_activation += 1
            if op is None:
                return
            z = _first_tensor(inputs)
            if z is not None and z.is_floating_point():
                self._accumulator(name, op, _site_location(self.sites, name), name, bounds).observe(z)

        return pre

    def _act_post(self, module: Any, inputs: Any, output: Any) -> None:
        self._inside_activation -= 1

    def _function_mode(self):
        from torch.overrides import TorchFunctionMode

        from ..capture.kinds import call_name
        from ..ir.source import user_location

        probes = self
        watched = SATURATING | RELU_FAMILY

        class ActivationCalls(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if not probes._inside_activation:
                    name = call_name(func)
                    if name in watched and args:
                        z = args[0]
                        if getattr(z, "is_floating_point", lambda: False)() and z.requires_grad:
                            loc = user_location(sys._getframe(1))
                            if loc is None and probes._last_layer:
                                loc = _site_location(probes.sites, probes._last_layer)
                            # one site per line and per preceding layer: a loop's calls stay apart
                            key = f"{name}@{loc or '?'}#{probes._last_layer or ''}"
                            bounds = None
                            if name == "hardtanh":
                                lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
                                hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
                                bounds = (float(lo), float(hi))
                            probes._accumulator(key, name, loc, None, bounds).observe(z)
                return func(*args, **kwargs)

        return ActivationCalls()

    # -- attach ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def attached(self, model: Any) -> Iterator[None]:
        from ..capture.kinds import classify_module
        from ..ir.graph import ACTIVATION

        handles = []
        wanted = set(self.layer_modules)
        try:
            for name, module in model.named_modules():
                if name in wanted:
                    handles.append(module.register_forward_hook(self._layer_hook(name)))
                elif name in self.order_modules:
                    handles.append(module.register_forward_hook(self._order_hook(name)))
                c = classify_module(module)
                if c is not None and c.kind == ACTIVATION:
                    op = c.op if c.op in SATURATING or c.op in RELU_FAMILY else None
                    bounds = (float(c.attrs.get("min_val", -1.0)), float(c.attrs.get("max_val", 1.0))) \
                        if c.op == "hardtanh" else None
                    handles.append(module.register_forward_pre_hook(self._act_pre(name, op, bounds)))
                    handles.append(module.register_forward_hook(self._act_post))
            with self._function_mode() if self.functional else contextlib.nullcontext():
                yield
        finally:
            for h in handles:
                h.remove()
            self._inside_activation = 0

    def activation_sites(self) -> list[ActivationSite]:
        if self._reduced is not None:
            return self._reduced
        return [acc.finish() for acc in self._acc.values()]

    def reduce(self, reducer: Any) -> None:
        """Sum what every rank saw (its rows of the batch): error-signal energies per weight layer,
        and per activation site the entry counts, with dead units counted over the whole batch."""
        import numpy as np

        layers = self.layer_modules
        local = []
        for name in layers:
            parts = self.delta_sq.get(name) or []
            local += [float(sum(parts)), 1.0 if parts else 0.0, float(self.delta_numel.get(name, 0)),
                      float(sum(self.delta_nonfinite.get(name) or []))]
        total = reducer.sum(local)
        for i, name in enumerate(layers):
            sq, seen, numel, nonfinite = total[4 * i:4 * i + 4]
            self.delta_sq[name] = [sq] if seen else []
            self.delta_numel[name] = int(numel)
            self.delta_nonfinite[name] = [int(nonfinite)] if nonfinite else []

        mine = {}
        for key, acc in self._acc.items():
            site = acc.finish()
            masks = [np.packbits(m.numpy().astype(bool)) for m in acc.alive]
            mine[key] = (site, [len(m) for m in acc.alive], masks)
        merged: dict[str, ActivationSite] = {}
        alive: dict[str, list] = {}
        for ranks_sites in reducer.gather(mine):
            for key, (site, sizes, masks) in ranks_sites.items():
                have = merged.get(key)
                if have is None:
                    merged[key] = site
                    alive[key] = [(n, m) for n, m in zip(sizes, masks)]
                    continue
                have.count += site.count
                have.saturated += site.saturated
                have.inactive += site.inactive
                have.calls = max(have.calls, site.calls)
                prev = alive[key]
                if len(prev) == len(sizes) and all(a[0] == n for a, n in zip(prev, sizes)):
                    alive[key] = [(n, np.bitwise_or(a[1], m)) for a, n, m in zip(prev, sizes, masks)]
                # else the ranks took different paths and their units do not line up: the first
                # rank's masks stand for the site
        for key, site in merged.items():
            if self.keep_units:
                site.units = sum(n for n, _ in alive[key])
                site.dead_units = sum(n - int(np.unpackbits(m, count=n).sum()) for n, m in alive[key])
        self._reduced = list(merged.values())

    def delta(self, name: str) -> tuple[float | None, float | None, int]:
        """(norm, rms, non-finite entries) of dL/d(output) over the layer's calls."""
        import math

        parts = self.delta_sq.get(name) or []
        if not parts:
            return None, None, 0
        sq = float(sum(parts))
        nonfinite = int(sum(self.delta_nonfinite[name]))
        if not math.isfinite(sq):
            return None, None, nonfinite
        norm = math.sqrt(sq)
        n = self.delta_numel.get(name) or 0
        return norm, (norm / math.sqrt(n) if n else None), nonfinite
