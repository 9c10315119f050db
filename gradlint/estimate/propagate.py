"""Propagation through the graph: forward second moments, backward gradients, per-layer ratios.

1. Forward, in graph order: each node's handler turns its inputs' ``Signal``s into its output's.
2. Backward, in reverse order: the model outputs get the contract's error signal (every element
   N(0, 1)); each handler maps its output gradient to its inputs; a tensor read by several
   consumers sums their gradients (branches and merges). Weight layers record the expected
   ||dL/dW||^2, which needs both the gradient at their output and the signal at their input.
3. Per weight layer (``graph.weight_layers()``, the contract's list): RMS of dL/dW over its
   weights, relative to the last weight layer: ``grad_ratio``.
4. Why: every backward edge's log-gain is booked to its mechanism (the handler's ``cause``), so
   a layer's log10(grad_ratio) splits exactly into "sigmoid derivatives", "weights", ... plus
   the branching of the gradient ("merge") and the layers' own input statistics and shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..ir import graph as g
from . import prefix
from .context import Context, Unsupported
from .handlers import lookup
from .information import Indistinct
from .registry import Step, Unhandled
from .scale import Collapse
from .signals import UNIT, Grad, Signal, merge_grads
from .weights import WeightSource

# Categories that are not a node's mechanism but the bookkeeping of the split.
MERGE = "merge"  # gradients of several consumers adding up (skip connections)
INPUT_SCALE = "signal scale at the layer input"
SHAPE = "layer size and weight sharing"


@dataclass
class LayerEstimate:
    node: int  # the layer's first call in the graph
    module: str
    type: str
    location: Any
    grad_rms: float  # predicted RMS of dL/dW under the contract's loss (absolute)
    grad_ratio: float | None = None
    bound: float | None = None
    naive: float | None = None  # the textbook baseline: product of activation-derivative maxima
    zero: str | None = None  # why the gradient is exactly zero (a structural zero), if it is
    unused: bool = False  # no path to a model output
    causes: dict[str, float] = field(default_factory=dict)  # log10 contributions to log10(grad_ratio)
    is_embedding: bool = False
    act_rms: float | None = None  # predicted RMS of the layer's input activations (its first call)
    cosine: float | None = None  # predicted cosine similarity of two samples' input activations


@dataclass
class NodeFlow:
    """The error signal at one node, for the Mermaid picture (plain data, picklable)."""

    id: int
    label: str
    kind: str
    op: str
    inputs: list[int]
    delta: float | None  # sqrt(G) relative to the last weight layer's output; None if unreached
    zero: bool = False
    layer: int | None = None  # index into the weight layers, for weight nodes


@dataclass
class Estimate:
    layers: list[LayerEstimate]
    attenuation: float | None  # grad_ratio of the first non-embedding weight layer
    first: int | None  # its index in ``layers``
    unhandled: list[Unhandled]
    assumptions: list[str]
    flow: list[NodeFlow]
    edge_gains: dict[tuple[int, int], float]  # (input, consumer) -> sqrt of that edge's gain
    zero_reason: str | None = None  # set when the attenuation is a structural zero
    zero_sources: dict[str, int] = field(default_factory=dict)  # reason -> node making the zero
    signals: list[Signal] = field(default_factory=list)
    grads: list[Grad | None] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    bound_estimated: bool = False  # some factor of the bound is an expected gain, not a bound
    inputs: str = ""  # where the input statistics came from
    unresolved_zeros: list[str] = field(default_factory=list)  # zero weights gradient descent never moves
    dtype: str = "float32"  # the range the absolute scale was checked against
    collapse: list[Collapse] = field(default_factory=list)  # where a signal leaves that range
    indistinct: Indistinct | None = None  # where two inputs' activations become alike
    # What the estimate was computed from, kept so that counterfactual estimates (gradlint/advise)
    # can re-run it with one change: the weight statistics, the batch and the input statistics.
    # In-process only: the advisor runs where the estimate was made.
    weights: Any = field(default=None, metadata={"in_process_only": True})
    batch: int = 1
    input_signals: dict[int, Signal] = field(default_factory=dict, metadata={"in_process_only": True})

    @property
    def collapsed(self) -> str | None:
        """'underflow' / 'overflow' when a predicted signal leaves the dtype's range."""
        from .scale import verdict_of

        return verdict_of(self.collapse)

    @property
    def last(self) -> LayerEstimate | None:
        return self.layers[-1] if self.layers else None

    def plain(self) -> "Estimate":
        """A copy without the per-node working state (signals, gradients, handler steps with their
        closures): what the report keeps and renderers read."""
        return replace(self, signals=[], grads=[], steps=[], weights=None, input_signals={})


def _passthrough(node: Any, ins: list[Signal], graph: Any) -> Step:
    """An op with no handler: its first floating input passes through unchanged (an index tensor
    first, as in ``scatter_add(index, src)``, carries no signal and no gradient)."""
    n = len(node.inputs)
    j = next((k for k, i in enumerate(node.inputs) if graph[i].is_float), 0)
    out = ins[j] if ins else UNIT
    return Step(out, lambda grad: [grad if k == j else Grad(0.0) for k in range(n)], cause="unmodelled ops",
                lipschitz=[1.0 if k == j else 0.0 for k in range(n)], bound_is_estimate=True)


def _where(node: Any) -> str:
    if node.module:
        return node.module
    if node.location is not None:
        return f"{node.location.path}:{node.location.line}"
    return f"node {node.id}"


def forward(ctx: Context) -> tuple[list[Step], list[Unhandled]]:
    graph = ctx.graph
    steps: list[Step] = []
    unhandled: list[Unhandled] = []
    ctx.signals = []
    for node in graph:
        ins = [ctx.signals[i] for i in node.inputs]
        if node.is_float:  # integer model inputs promoted by a float op (t[:, None] * freqs): their statistics
            for j, i in enumerate(node.inputs):
                if graph[i].kind == g.INPUT and not graph[i].is_float and i in ctx.input_signals:
                    ins[j] = ctx.input_signals[i]
        for j, i in enumerate(node.inputs):  # a reader of the class token sees the class token
            pre = ctx.prefix.get(i)
            if pre is not None and prefix.reads_prefix(node, j, graph[i], pre, ctx):
                ins[j] = pre.signal
                ctx.prefix_reads.setdefault(node.id, []).append(j)
        handler = lookup(node.kind, node.op)
        step = None
        if handler is None:
            unhandled.append(Unhandled(node.kind, node.op, _where(node), "no handler"))
        else:
            try:
                step = handler(node, ins, ctx)
            except Unsupported as e:
                unhandled.append(Unhandled(node.kind, node.op, _where(node), str(e)))
            except (ArithmeticError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                unhandled.append(Unhandled(node.kind, node.op, _where(node), f"{type(e).__name__}: {e}"))
        handled = step is not None
        if step is None:
            step = _passthrough(node, ins, graph)
        out = step.out
        if not all(math.isfinite(v) for v in (out.m, out.mu, out.c, out.p)):
            out = Signal(min(out.m, 1e300) if math.isfinite(out.m) else 1e300)
            step.out = out
        steps.append(step)
        ctx.signals.append(out)
        if out.m == 0.0 and out.mu == 0.0:
            if step.zero:
                ctx.forward_zero[node.id] = (step.zero, node.id)
            else:
                passed = next((ctx.forward_zero[i] for i in node.inputs if i in ctx.forward_zero), None)
                if passed is not None:
                    ctx.forward_zero[node.id] = passed
        if handled:
            pre = prefix.origin(node, ins, ctx) or prefix.follow(node, ins, ctx, handler)
            if pre is not None:
                ctx.prefix[node.id] = pre
    return steps, unhandled


@dataclass
class Backward:
    grads: list[Grad | None]
    energies: dict[str, float]
    zero: list[str | None]  # per node: why its gradient is exactly zero
    log_g: list[float | None]  # log10 G per node
    causes: list[dict[str, float] | None]  # log10 G split by mechanism, from the outputs
    edge_gains: dict[tuple[int, int], float]
    zero_sources: dict[str, int]  # structural-zero reason -> the node that makes it


def backward(ctx: Context, steps: list[Step]) -> Backward:
    graph = ctx.graph
    n = len(graph)
    contributions: list[list[tuple[Grad, int, str | None]]] = [[] for _ in range(n)]
    grads: list[Grad | None] = [None] * n
    zero: list[str | None] = [None] * n
    log_g: list[float | None] = [None] * n
    causes: list[dict[str, float] | None] = [None] * n
    energies: dict[str, float] = {}
    edge_gains: dict[tuple[int, int], float] = {}
    zero_sources: dict[str, int] = {}
    head_energy = [0.0] * n  # the part of each node's G on its prefix tokens (prefix.py)
    for node in reversed(graph.nodes):
        step = steps[node.id]
        if node.kind == g.OUTPUT:
            grad = Grad(1.0)
            log_g[node.id] = 0.0
            causes[node.id] = {}
        else:
            contrib = contributions[node.id]
            if not contrib:
                continue
            grad = merge_grads([c[0] for c in contrib])
            grad = _coherent(contrib, grad)
            grads[node.id] = grad
            if grad.g <= 0.0:
                # exactly zero (a zero-initialized weight or gate downstream): pass the zero and its
                # reason on, so that every layer behind it is known to be a structural zero
                zero[node.id] = next((c[2] for c in contrib if c[2]), None)
                for src in node.inputs:
                    if graph[src].is_float:
                        contributions[src].append((Grad(0.0), node.id, zero[node.id]))
                continue
            log_g[node.id], causes[node.id] = _split(contrib, log_g, causes, steps)
        head = min(head_energy[node.id], grad.g) if node.kind != g.OUTPUT else 0.0
        pre = ctx.prefix.get(node.id)
        in_grads, head_in = _prefix_backward(step, pre, grad, head, len(node.inputs))
        reads = ctx.prefix_reads.get(node.id, ())
        for j, src in enumerate(node.inputs):
            if j >= len(in_grads) or not graph[src].is_float:
                continue
            gi = in_grads[j]
            if j in reads:  # this consumer reads only the prefix tokens: its gradient lives there
                head_energy[src] += gi.g
            elif j < len(head_in):
                head_energy[src] += head_in[j]
            if not math.isfinite(gi.g):
                gi = Grad(1e300, gi.rho)
            reason = None
            if gi.g <= 0.0 and grad.g > 0.0 and step.zero:
                reason = step.zero
                zero_sources.setdefault(reason, node.id)
            elif gi.g <= 0.0 and grad.g > 0.0:
                # another factor of this node is exactly zero in the forward (x * gate(x) with x = 0
                # after a zero-initialized BatchNorm scale: squeeze-and-excitation behind zero-init-last)
                made = next((ctx.forward_zero[k] for k in node.inputs if k != src and k in ctx.forward_zero), None)
                if made is not None:
                    reason = made[0]
                    zero_sources.setdefault(reason, made[1])
            elif gi.g <= 0.0:
                reason = zero[node.id]
            contributions[src].append((gi, node.id, reason))
            if grad.g > 0 and node.kind != g.OUTPUT:
                edge_gains[(src, node.id)] = math.sqrt(gi.g / grad.g)
        if step.weight_grads is not None and node.kind != g.OUTPUT:
            if head > 0 and pre is not None and pre.step is not None and pre.step.weight_grads is not None:
                parts = [(step, grad.like(max(grad.g - head, 0.0))), (pre.step, Grad(head))]
            else:
                parts = [(step, grad)]
            for st, gr in parts:
                for name, e in st.weight_grads(gr).items():
                    if name:
                        name, e = ctx.weights.route(name, e)  # an effective weight's goes to its trainable tensor
                        energies[name] = energies.get(name, 0.0) + (e if math.isfinite(e) else 1e300)
    return Backward(grads, energies, zero, log_g, causes, edge_gains, zero_sources)


def _coherent(contrib: list, grad: Grad) -> Grad:
    """Add the cross term mean field drops where it is not zero: a residual branch that sends the
    ones-component of the block's gradient back coherently (``Grad.echo`` = (add, k), dense.py)
    adds to the skip path's copy of it: (1 + k)^2 instead of 1 + (incoherent) on that component."""
    if grad.g <= 0 or not any(gr.echo for gr, _, _ in contrib):
        return grad
    extra, ones = 0.0, grad.ones
    for gr, _, _ in contrib:
        if not gr.echo:
            continue
        add, k = gr.echo
        skip = next((g2 for g2, c, _ in contrib if c == add), None)
        if skip is None or skip.ones <= 0:
            continue
        extra += (2 * k + k * k) * skip.ones
        ones += (2 * k + k * k) * skip.ones
    if extra == 0.0:
        return grad
    total = max(grad.g + extra, 0.0)
    return Grad(total, grad.rho, grad.centered, min(max(ones, 0.0), total))


def _prefix_backward(step: Step, pre: Any, grad: Grad, head: float, n_in: int) -> tuple[list[Grad], list[float]]:
    """The inputs' gradients, and the part of each on its prefix tokens: the prefix's share of
    the gradient goes through the node's gains at the prefix's own statistics."""
    if head <= 0 or pre is None:
        return step.backward(grad), []
    rest = grad.like(max(grad.g - head, 0.0))
    if pre.step is None:  # the concat that made the prefix: its share goes to the prefix's part
        out = [rest] + [Grad(0.0)] * (n_in - 1)
        heads = [0.0] * n_in
        if pre.head_input is not None and n_in == 2:
            out = [Grad(head), rest]
            heads = [head, 0.0]
        return out, heads
    whole, part = step.backward(rest), pre.step.backward(Grad(head))
    out, heads = [], []
    for j in range(min(len(whole), len(part))):
        a, b = whole[j], part[j]
        total = a.g + b.g
        out.append(Grad(total, a.rho * a.g / total if total > 0 else 0.0, a.centered))
        heads.append(b.g if j < len(pre.carry) and pre.carry[j] else 0.0)
    return out + whole[len(out):], heads


def _split(contrib, log_g, causes, steps) -> tuple[float, dict[str, float]]:
    """log10 G of a node and its split by mechanism, from its consumers' (exact in total)."""
    live = [(gr, c) for gr, c, _ in contrib if gr.g > 0 and log_g[c] is not None]
    total = sum(gr.g for gr, _ in live)
    if total <= 0:
        return -math.inf, {}
    out: dict[str, float] = {}
    weighted_logs = 0.0
    for gr, c in live:
        w = gr.g / total
        lg = math.log10(gr.g)
        weighted_logs += w * lg
        for k, v in (causes[c] or {}).items():
            out[k] = out.get(k, 0.0) + w * v
        cat = steps[c].cause
        out[cat] = out.get(cat, 0.0) + w * (lg - log_g[c])
    spread = math.log10(total) - weighted_logs  # >= 0: several paths add up
    if spread > 1e-12:
        out[MERGE] = out.get(MERGE, 0.0) + spread
    return math.log10(total), out


def estimate_graph(graph: Any, weights: WeightSource, batch: int, inputs: dict[int, Signal] | None = None,
                   dtype: str = "float32", bounds: bool = True) -> Estimate:
    """``bounds=False`` skips the worst-case bound and the baseline (their spectral norms are
    the slow part), for the advisor's counterfactual estimates, which only compare ratios."""
    from .bound import bounds_and_baseline
    from .information import readout
    from .scale import collapses

    ctx = Context(graph, weights, max(batch, 1), dict(inputs or {}))
    steps, unhandled = forward(ctx)
    bw = backward(ctx, steps)
    layers = _layers(ctx, steps, bw)
    estimated = False
    if bounds:
        worst, naive, estimated = bounds_and_baseline(ctx, steps, [ly.node for ly in layers])
        for ly, b, nv in zip(layers, worst, naive):
            ly.bound, ly.naive = b, nv
    first = next((i for i, ly in enumerate(layers) if not ly.is_embedding), None)
    att = layers[first].grad_ratio if first is not None else None
    zero_reason = None
    if first is not None and layers[first].zero and (att is None or att == 0.0):
        zero_reason = layers[first].zero
    elif layers and layers[-1].grad_rms == 0.0:
        zero_reason = layers[-1].zero
    assumptions = [f"{_where(graph[i])}: {text}" for i, text in ctx.assumptions]
    assumptions += [f"{name}: values unknown on the meta device; assumed from its module's init"
                    for name in dict.fromkeys(weights.unknown)]
    est = Estimate(layers, att, first, unhandled, assumptions, _flow(graph, bw, layers), bw.edge_gains,
                   zero_reason, bw.zero_sources, ctx.signals, bw.grads, steps, estimated, dtype=dtype,
                   weights=weights, batch=max(batch, 1), input_signals=dict(inputs or {}))
    est.collapse = collapses(ctx, steps, bw, layers, dtype)
    est.indistinct = readout(ctx, layers)
    return est


def _layers(ctx: Context, steps: list[Step], bw: Backward) -> list[LayerEstimate]:
    graph, weights = ctx.graph, ctx.weights
    calls_of: dict[str, list[int]] = {}  # every call of each weight module (one pass, not one per layer)
    for n in graph:
        if n.module and n.is_weight_layer:
            calls_of.setdefault(n.module, []).append(n.id)
    out = []
    for node in graph.weight_layers():
        names = list(node.attrs.get("weights", ()))
        energy = sum(bw.energies.get(nm, 0.0) for nm in names)
        count = sum(weights.numel(nm) for nm in names) or 1
        rms = math.sqrt(energy / count) if energy > 0 else 0.0
        calls = calls_of.get(node.module, [node.id]) if node.module else [node.id]
        reached = [bw.grads[i] for i in calls if bw.grads[i] is not None]
        zero = None
        if rms == 0.0:
            zero = next((bw.zero[i] for i in calls if bw.zero[i]), None)
            if zero is None:  # the layer's own zero-initialized gain (a weight-standardized conv)
                zero = next((steps[i].info["own_zero"] for i in calls if steps[i].info.get("own_zero")), None)
                if zero is not None:
                    bw.zero_sources.setdefault(zero, calls[0])
            if zero is None:  # dL/dW = delta x input: its input is exactly zero
                made = next((ctx.forward_zero[graph[i].inputs[0]] for i in calls
                             if graph[i].inputs and graph[i].inputs[0] in ctx.forward_zero), None)
                if made is not None:
                    zero = made[0]
                    bw.zero_sources.setdefault(zero, made[1])
        src = next((i for i in node.inputs if graph[i].is_float), None)
        act = math.sqrt(ctx.signals[src].m) if src is not None and ctx.signals[src].m > 0 else (0.0 if src is not None else None)
        out.append(LayerEstimate(node.id, node.module or node.op, node.module_type or node.kind, node.location, rms,
                                 zero=zero, unused=not reached, is_embedding=node.kind == g.EMBEDDING, act_rms=act))
    if not out:
        return out
    ref = out[-1]
    for ly in out:
        ly.grad_ratio = ly.grad_rms / ref.grad_rms if ref.grad_rms > 0 else None
        if ly.grad_ratio is not None and ly.grad_ratio > 0:
            ly.causes = _layer_causes(ctx, steps, bw, ly, ref)
    return out


def _layer_causes(ctx: Context, steps: list[Step], bw: Backward, ly: LayerEstimate, ref: LayerEstimate) -> dict[str, float]:
    """Split log10(grad_ratio) into mechanisms: half the backward log-gains between the two
    layers' outputs, and the layers' input statistics and shapes (the weight-gradient formula)."""
    c_l, c_r = bw.causes[ly.node] or {}, bw.causes[ref.node] or {}
    out: dict[str, float] = {}
    for k in set(c_l) | set(c_r):
        v = 0.5 * (c_l.get(k, 0.0) - c_r.get(k, 0.0))
        if abs(v) > 1e-12:
            out[k] = v
    total = math.log10(ly.grad_ratio)
    gl, gr = bw.log_g[ly.node], bw.log_g[ref.node]
    rest = total - sum(out.values())
    graph = ctx.graph
    src_l = graph[ly.node].inputs[0] if graph[ly.node].inputs else None
    src_r = graph[ref.node].inputs[0] if graph[ref.node].inputs else None
    if src_l is not None and src_r is not None and gl is not None and gr is not None:
        ml, mr = ctx.signals[src_l].m, ctx.signals[src_r].m
        if ml > 0 and mr > 0 and graph[ly.node].kind != g.EMBEDDING:
            scale = 0.5 * math.log10(ml / mr)
            out[INPUT_SCALE] = out.get(INPUT_SCALE, 0.0) + scale
            rest -= scale
    if abs(rest) > 1e-12:
        out[SHAPE] = out.get(SHAPE, 0.0) + rest
    return out


def _flow(graph: Any, bw: Backward, layers: list[LayerEstimate]) -> list[NodeFlow]:
    ref = layers[-1].node if layers else None
    ref_g = bw.grads[ref].g if ref is not None and bw.grads[ref] is not None else None
    index = {ly.node: i for i, ly in enumerate(layers)}
    out = []
    for node in graph:
        gr = bw.grads[node.id]
        delta = None
        if gr is not None and ref_g and ref_g > 0:
            delta = math.sqrt(gr.g / ref_g)
        label = node.module or (node.op or node.kind)
        out.append(NodeFlow(node.id, label, node.kind, node.op, list(node.inputs), delta,
                            gr is not None and gr.g == 0.0, index.get(node.id)))
    return out


def describe_unhandled(items: list[Unhandled]) -> list[str]:
    """One line per distinct (kind, op, reason): 'other/foo x3 (no handler): a.b, c.d'."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for u in items:
        groups.setdefault((u.kind, u.op, u.reason), []).append(u.where)
    lines = []
    for (kind, op, reason), where in groups.items():
        shown = ", ".join(where[:3]) + (", ..." if len(where) > 3 else "")
        lines.append(f"{kind}/{op} x{len(where)} ({reason}): {shown}")
    return lines


__all__ = ["Estimate", "LayerEstimate", "NodeFlow", "estimate_graph", "describe_unhandled"]
