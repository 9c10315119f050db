"""One measured forward and backward pass: hooks on, loss, backward, statistics, state restored.

Used by the ``--verify`` stage, the Python API and the overhead benchmark. The model is used
where it lies (no copy); its training flags, ``requires_grad`` flags and existing ``.grad``
tensors are put back afterwards, and with ``preserve_buffers`` also its buffers (BatchNorm's
running statistics move in a train-mode forward), so a model handed in by a notebook leaves as
it came. Stochastic depth (drop path) runs as the identity during the pass
(``stochastic_depth.py``); everything else is in train mode.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..ir.errors import StageError, one_line, stage_error, user_frame_of
from .gradstats import grad_stats
from .measure import grad_ratios, projection_loss, weight_gradients
from ..ir.verdict import Thresholds
from .measurement import LayerMeasurement, Measurement, summarize
from .nonfinite import find_forward_origin
from .probes import Probes
from .resources import PeakMemory
from .stochastic_depth import stochastic_depth_off


@dataclass
class LayerSpec:
    """A weight layer to measure (from ``graph.weight_layers()``)."""

    module: str
    type: str
    location: Any
    weights: Sequence[str]
    embedding: bool = False


def has_functional_activations(graph: Any) -> bool:
    """Does the forward call sigmoid/tanh/ReLU-family functions outside activation modules?
    Only then does the pass watch every torch call for them."""
    from ..ir.graph import ACTIVATION
    from ..ir.ops import RELU_FAMILY, SATURATING

    return any(n.kind == ACTIVATION and n.module is None and n.op in SATURATING | RELU_FAMILY for n in graph)


def layer_specs(graph: Any) -> list[LayerSpec]:
    from ..ir.graph import EMBEDDING

    return [LayerSpec(n.module or n.op, n.module_type or n.kind, n.location, list(n.attrs.get("weights", ())),
                      n.kind == EMBEDDING) for n in graph.weight_layers()]


def is_out_of_memory(e: BaseException) -> bool:
    import torch

    if isinstance(e, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(e).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def _call_loss(loss_fn: Callable, output: Any, args: tuple) -> Any:
    """A user loss takes the output, and the positional example inputs when it has room for them
    (``def gradlint_loss(logits, tokens)`` for next-token prediction)."""
    try:
        params = list(inspect.signature(loss_fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) > 1 or any(p.kind == p.VAR_POSITIONAL for p in params):
        return loss_fn(output, *args)
    return loss_fn(output)


def _zero_parameters(model: Any, reducer: Any = None) -> list[str]:
    """Parameters other than biases that are exactly zero: a zero-initialized head, ReZero/SkipInit
    gates, LayerScale or zero-init-residual BatchNorm scales. Sharded: zero on every rank."""
    import torch

    from .distributed import local

    names, nonzero = [], []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.rpartition(".")[2].startswith("bias") or p.numel() == 0:
                continue
            t = local(p.detach())
            # the fastest full reduction first; a float32 norm of 1e-25s is 0 too, so confirm
            zero = t.numel() == 0 or (float(torch.linalg.vector_norm(t.float())) == 0.0
                                      and not bool(torch.count_nonzero(t)))
            names.append(name)
            nonzero.append(0.0 if zero else 1.0)
    if reducer is not None:
        nonzero = reducer.sum(nonzero)
    return [n for n, nz in zip(names, nonzero) if nz == 0.0]


class SavedState:
    """What the pass changes on the model, to put back afterwards."""

    def __init__(self, model: Any, preserve_buffers: bool) -> None:
        self.model = model
        self.training = [(m, m.training) for m in model.modules()]
        self.params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()] if preserve_buffers else []

    def restore(self) -> None:
        import torch

        for m, flag in self.training:
            m.training = flag
        for p, flag, grad in self.params:
            p.grad = grad
            p.requires_grad_(flag)
        with torch.no_grad():
            for b, saved in self.buffers:
                b.copy_(saved)


def run_pass(model: Any, args: tuple, kwargs: dict, layers: Sequence[LayerSpec], *, sites: dict | None = None,
             seed: int = 0, loss_fn: Callable | None = None, loss_name: str | None = None, device: str = "cpu",
             input_source: str = "", thresholds: Thresholds = Thresholds(),
             saturation_threshold: float = 5.0, preserve_buffers: bool = False,
             batch_hint: str = "", functional_activations: bool = True, reducer: Any = None,
             forward_model: Any = None) -> Measurement:
    """Measure one pass. Failures raise ``StageError("verify", ...)``.

    ``reducer`` (``distributed.Reducer``): this process is one rank of several, ``args`` hold its
    rows of the batch, and every statistic is summed across the ranks before it is read, so each
    rank returns the same ``Measurement``, that of the whole batch. ``forward_model``: the module
    to call when it wraps ``model`` (DDP), whose names the layers use.
    """
    import torch

    from ..capture.inputs import output_tensors

    zero_params = _zero_parameters(model, reducer)
    owners = {name.rpartition(".")[0] for name in zero_params}
    probes = Probes([spec.module for spec in layers], sites or {}, saturation_threshold, order_modules=owners,
                    functional=functional_activations, keep_units=reducer is not None)
    saved = SavedState(model, preserve_buffers)
    weight_names = {w for spec in layers for w in spec.weights}
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []  # fork their RNG too
    loss_value = None
    modes = contextlib.ExitStack()
    try:
        model.train()
        dropped_paths = modes.enter_context(stochastic_depth_off(model))  # identity, as at inference
        for name, p in model.named_parameters():
            p.grad = None
            if name in weight_names:
                p.requires_grad_(True)  # gradient flow is a property of the architecture, frozen or not
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            with PeakMemory(device) as peak:
                t0 = time.perf_counter()
                try:
                    with torch.enable_grad():
                        with probes.attached(model):
                            out = (forward_model if forward_model is not None else model)(*args, **kwargs)
                        if loss_fn is not None:
                            loss = _call_loss(loss_fn, out, args)
                        else:
                            floats = output_tensors(out)
                            if not floats:
                                raise StageError("verify", f"the model's output ({_describe(out)}) holds no "
                                                 "floating-point tensor to take a gradient of", None,
                                                 "return the floating-point output (logits, not argmax), or define "
                                                 "gradlint_loss(output) in the model file")
                            loss = projection_loss(floats, seed,
                                                   (reducer.rank, reducer.world) if reducer is not None else None)
                        del out
                        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                            raise StageError("verify", f"the loss function returned {_describe(loss)}, not a scalar",
                                             None, "return a single number (a 0-d tensor) from the loss function")
                        if not loss.requires_grad:
                            raise StageError("verify", "the loss does not depend on any weight: nothing to differentiate",
                                             None, "make the model's output depend on its parameters")
                        loss_value = float(loss.detach())
                        loss.backward()
                        del loss
                    if device.startswith("cuda"):
                        torch.cuda.synchronize(device)
                except StageError:
                    raise
                except BaseException as e:  # noqa: BLE001 - the user's forward may raise anything
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    if is_out_of_memory(e):
                        raise StageError(
                            "verify", f"out of memory in the forward/backward pass on {device}{batch_hint}: {one_line(e, 160)}",
                            user_frame_of(e), "use a smaller --batch-size (or smaller example_inputs()), or --device cpu",
                        ) from None
                    raise stage_error("verify", e, hint="the model must run one forward and backward pass on these "
                                                        "inputs; use a smaller --batch-size or --device cpu if "
                                                        "the problem is memory") from None
                fb_time = time.perf_counter() - t0
        t1 = time.perf_counter()
        if reducer is not None:
            loss_value = reducer.sum([loss_value if loss_value is not None else 0.0])[0]
            reducer.prepare_gradients([p for p in model.parameters() if p.requires_grad])
            probes.reduce(reducer)
        measurement = _collect(model, layers, probes, zero_params, reducer)
        measurement.device = device
        measurement.loss = loss_name or ("user loss" if loss_fn is not None else f"random Gaussian projection (seed {seed})")
        measurement.input_source = input_source
        measurement.loss_value = loss_value
        measurement.zero_parameters = zero_params
        summarize(measurement, thresholds)
        if dropped_paths:
            measurement.notes.append(f"stochastic depth off for the measured pass: {dropped_paths} "
                                     f"module{'s' if dropped_paths != 1 else ''} (identity, as at inference)")
        if measurement.has_nonfinite:
            # the search re-runs the forward; sharded, that needs every rank in step: the backward's word only
            measurement.nonfinite_origin = ((find_forward_origin(model, args, kwargs, seed) if reducer is None else None)
                                            or _backward_origin(measurement))
        measurement.statistics_s = time.perf_counter() - t1
        measurement.forward_backward_s = fb_time
        measurement.peak_memory_bytes = peak.peak
        measurement.memory_method = peak.method
        if reducer is not None:  # the slowest rank, and the largest per-rank peak
            slowest, stats_s, most = reducer.max([fb_time, measurement.statistics_s,
                                                  float(peak.peak) if peak.peak is not None else -1.0])
            measurement.forward_backward_s, measurement.statistics_s = slowest, stats_s
            measurement.peak_memory_bytes = int(most) if most >= 0 else None
            measurement.memory_method = f"{peak.method}, the largest of {reducer.world} ranks"
        return measurement
    finally:
        for p in model.parameters():
            p.grad = None  # free this pass's gradients before putting the user's back
        modes.close()
        saved.restore()


def _describe(value: Any) -> str:
    """'an int64 tensor of shape (8,)', 'a list'."""
    shape = getattr(value, "shape", None)
    what = (f"{str(getattr(value, 'dtype', '')).replace('torch.', '')} tensor of shape {tuple(shape)}"
            if shape is not None else type(value).__name__)
    return ("an " if what[:1] in "aeio" else "a ") + what


def _collect(model: Any, layers: Sequence[LayerSpec], probes: Probes, zero_params: list[str],
             reducer: Any = None) -> Measurement:
    params = dict(model.named_parameters())
    if reducer is None:
        contract = weight_gradients(model, [(spec.module, spec.weights) for spec in layers])
        stats = []
        for spec in layers:
            tensors = [params[w] for w in spec.weights if w in params]
            stats.append(grad_stats([p.grad for p in tensors], [p.numel() for p in tensors]))
    else:
        contract, stats = _reduced_gradients(params, layers, reducer)
    out: list[LayerMeasurement] = []
    for spec, lg, s in zip(layers, contract, stats):
        finite = math.isfinite(lg.grad_norm)
        dn, drms, dnf = probes.delta(spec.module)
        out.append(LayerMeasurement(
            module=spec.module, type=spec.type, location=spec.location, embedding=spec.embedding, numel=lg.numel,
            grad_norm=lg.grad_norm if finite else None, grad_rms=lg.grad_rms if finite else None,
            zeros=s.zeros, nonfinite=s.nonfinite, positive=s.positive, negative=s.negative, hist=s.hist,
            hist_negative=s.hist_negative, delta_norm=dn, delta_rms=drms, delta_nonfinite=dnf,
            calls=probes.calls.get(spec.module, 0), used=s.used,
        ))
    # grad_ratio: contract definition, relative to the last weight layer; undefined when not finite
    if out and out[-1].grad_rms:
        for m, r in zip(out, grad_ratios(contract)):
            m.grad_ratio = r if m.grad_rms is not None else None
    _mark_structural_zeros(out, layers, probes.finish_order, zero_params)
    return Measurement(layers=out, activations=probes.activation_sites(), device="", loss="", input_source="",
                       loss_value=None, call_order={k: v for k, v in probes.finish_order.items() if k in probes.calls})


def gradients_now(model: Any, layers: Sequence[LayerSpec], thresholds: Thresholds = Thresholds(),
                  reducer: Any = None) -> Measurement:
    """The weight gradients the model holds now (after the caller's own backward), measured as the
    pass measures them: per-layer norms, ratios, zeros, signs and histograms, no activations or
    error signals. ``reducer``: summed across ranks."""
    probes = Probes([spec.module for spec in layers], {}, 5.0)
    m = _collect(model, layers, probes, [], reducer)
    summarize(m, thresholds)
    return m


def _reduced_gradients(params: dict, layers: Sequence[LayerSpec], reducer: Any) -> tuple[list, list]:
    """Per layer, the contract's gradient norm and the gradient statistics of the whole (sharded or
    replicated) gradient: each rank's sums over the entries it counts, added across ranks."""
    from .distributed import local
    from .gradstats import GradStats
    from .measure import LayerGradient, square_sum
    from .measurement import HIST_BINS

    rows = []
    numels = []
    for spec in layers:
        tensors = [params[w] for w in spec.weights if w in params]
        mine = [p for p in tensors if reducer.counts_here(p)]
        grads = [local(p.grad) if p.grad is not None else None for p in mine]
        s = grad_stats(grads, [local(p).numel() for p in mine])
        sq = sum(square_sum(g) for g in grads if g is not None)
        rows.append([sq, s.zeros, s.nonfinite, s.positive, s.negative, float(s.used), *s.hist, *s.hist_negative])
        numels.append(sum(p.numel() for p in tensors))  # a DTensor's numel is the whole tensor's
    width = 6 + 2 * HIST_BINS
    flat = reducer.sum([x for row in rows for x in row])
    contract, stats = [], []
    for i, (spec, n) in enumerate(zip(layers, numels)):
        row = flat[i * width:(i + 1) * width]
        sq = row[0]
        norm = math.sqrt(sq) if math.isfinite(sq) else sq
        contract.append(LayerGradient(spec.module, norm, norm / math.sqrt(n) if n else 0.0, n))
        s = GradStats(numel=n, zeros=int(row[1]), nonfinite=int(row[2]), positive=int(row[3]), negative=int(row[4]),
                      hist=[int(c) for c in row[6:6 + HIST_BINS]], hist_negative=[int(c) for c in row[6 + HIST_BINS:]],
                      used=row[5] > 0)
        stats.append(s)
    return contract, stats


def _mark_structural_zeros(out: list[LayerMeasurement], layers: Sequence[LayerSpec], order: dict[str, int],
                           zero_params: list[str]) -> None:
    """An all-zero gradient is structural when a zero-initialized weight finishes its forward after
    the layer does (it sits downstream and multiplies the error signal by zero)."""
    if not zero_params:
        return
    for m, spec in zip(out, layers):
        if not m.used or m.zeros != m.numel or m.nonfinite or m.module not in order:
            continue
        downstream = [(order[p.rpartition(".")[0]], p) for p in zero_params
                      if p not in spec.weights and p.rpartition(".")[0] in order
                      and order[p.rpartition(".")[0]] > order[m.module]]
        if downstream:
            m.structural_zero, m.zero_cause = True, min(downstream)[1]


def _backward_origin(m: Measurement) -> dict[str, Any] | None:
    """The forward was finite: name the layers between which the error signal became non-finite."""
    bad = [i for i, layer in enumerate(m.layers) if layer.delta_nonfinite or layer.nonfinite]
    if not bad:
        return None
    k = bad[-1]  # the first one the backward pass reaches
    layer = m.layers[k]
    after = m.layers[k + 1].module if k + 1 < len(m.layers) else "the loss"
    return {"what": f"the forward pass is finite; the gradient turns non-finite in the backward pass between "
                    f"{layer.module} and {after}", "location": layer.location}
