"""The advisor: estimate each candidate change on the captured graph and rank the results.

A counterfactual estimate is the model's own estimate re-run with one change: an edited copy of
the graph and/or re-initialized weight statistics, with the same batch and input statistics.
Nothing is built, nothing touches the source. The cost is one estimate per candidate (without
the worst-case bound), plus a short search for the gain of the variance-scaled init.

Ranking (best first): fixes predicted healthy with a decade of margin from both thresholds, then
those predicted healthy, then the rest by how far outside the healthy band they stay; within a
group the smaller change first (init < branch scale < activation swap < norm swap or insertion
< residual), then the predicted attenuation closest to 1. So the smallest change that makes the
verdict healthy comes first, and an architecture change only leads when re-initializing cannot
do it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..ir import graph as g
from ..ir.ops import SATURATING
from ..ir.verdict import EXPLODING, HEALTHY, VANISHING, Thresholds
from ..rules.finding import Fix
from .candidates import Candidate, InitHost, Proposals
from .edits import apply_edit
from .weights import InitScheme, reinit_overrides

MAX_FIXES = 6
# What the variance-scaled init aims at: well inside the healthy band, but no further from the
# model's own init than that (an attenuation of exactly 1 can take a sigmoid stack deep into
# saturation: the smallest gain that is healthy with margin is the gentler change).
SEARCH_TARGET = {VANISHING: 1e-1, EXPLODING: 1e2}


# The first/last gradient ratio is blind to absolute scale: shrinking every hidden weight of a ReLU
# stack raises it (the last layer's own gradient shrinks with the activations). A change that makes
# the activations' RMS drift by more than this many decades across the weight layers is not a fix.
SPAN_LIMIT = 2.0


# sigmoid/tanh inputs beyond +-5 sit in the flat tails (GL303's definition): a change that puts this
# share of them there passes the gradient back, but slowly-learning units are what it passes through.
TAIL = 5.0
TAIL_LIMIT = 0.3


@dataclass
class Prediction:
    attenuation: float | None
    verdict: str | None
    ratios: list[float | None]
    span: float = 0.0  # decades between the largest and smallest input RMS of the weight layers
    tails: float = 0.0  # mean share of sigmoid/tanh inputs beyond +-TAIL


def tail_share(graph: Any, est: Any) -> float:
    """Mean over the saturating activations of P(|z| > TAIL) for their Gaussian input."""
    shares = []
    for node in graph:
        if node.kind == g.ACTIVATION and node.op in SATURATING and node.inputs and node.inputs[0] < len(est.signals):
            x = est.signals[node.inputs[0]]
            sd = math.sqrt(x.var)
            if sd > 0:
                shares.append(0.5 * math.erfc((TAIL - x.mu) / (sd * math.sqrt(2)))
                              + 0.5 * math.erfc((TAIL + x.mu) / (sd * math.sqrt(2))))
    return sum(shares) / len(shares) if shares else 0.0


def forward_span(graph: Any, est: Any) -> float:
    """log10(max / min) of the RMS of the weight layers' inputs (embeddings excepted)."""
    logs = []
    for ly in est.layers:
        node = graph[ly.node]
        if ly.is_embedding or not node.inputs or node.inputs[0] >= len(est.signals):
            continue
        m = est.signals[node.inputs[0]].m
        if m > 0 and math.isfinite(m):
            logs.append(0.5 * math.log10(m))
    return max(logs) - min(logs) if logs else 0.0


class Advisor:
    def __init__(self, graph: Any, estimate: Any, thresholds: Thresholds, direction: str = VANISHING) -> None:
        self.graph = graph
        self.estimate = estimate
        self.thresholds = thresholds
        self.target = math.log10(SEARCH_TARGET.get(direction, 1.0))
        self.span = forward_span(graph, estimate) if estimate.signals else 0.0  # the model's own
        self.tails = tail_share(graph, estimate) if estimate.signals else 0.0
        self.estimates = 0  # counterfactual estimates run (the benchmark reports the cost)

    def predict(self, cand: Candidate, scheme: InitScheme | None = None) -> Prediction:
        from ..estimate.propagate import estimate_graph

        est = self.estimate
        graph = apply_edit(self.graph, cand.graph_edit)
        weights = est.weights
        scheme = scheme or cand.scheme
        if scheme is not None and cand.reinit:
            weights = weights.with_overrides(reinit_overrides(weights, cand.reinit, scheme))
        # the edited graph keeps the input nodes' ids (edits only insert after them)
        new = estimate_graph(graph, weights, est.batch, est.input_signals, dtype=est.dtype, bounds=False)
        self.estimates += 1
        verdict = self.thresholds.verdict(new.attenuation, structural_zero=bool(new.zero_reason),
                                          collapsed=new.collapsed)
        return Prediction(new.attenuation, verdict, [ly.grad_ratio for ly in new.layers], forward_span(graph, new),
                          tail_share(graph, new))

    def degenerate(self, p: Prediction) -> bool:
        """The change makes the forward scale drift beyond the limit (and beyond the model's own)."""
        return p.span > max(SPAN_LIMIT, self.span + 0.5)

    def search_gain(self, cand: Candidate) -> tuple[InitScheme, Prediction] | None:
        """The gain g of N(0, g^2/fan_in) whose predicted attenuation is closest to the target,
        among the gains that keep the forward scale (``degenerate``).

        A grid from 1/2 to 16 (a ReLU's He gain is sqrt(2); a sigmoid stack needs ~12), then two
        secant steps in log g between the grid points that bracket the target. The ratio need not
        be monotone in g (with fixed output layers it can fall, then rise), hence the grid.
        A gain that does not move the attenuation (normalization after every layer) gives None.
        """
        base = cand.scheme or InitScheme("scaled_normal", 1.0)
        tried: dict[float, Prediction] = {}

        def at(gain: float) -> Prediction:
            if gain not in tried:
                tried[gain] = self.predict(cand, InitScheme("scaled_normal", gain, base.nonlinearity))
            return tried[gain]

        def f(gain: float) -> float | None:
            att = at(gain).attenuation
            return math.log10(att) - self.target if att and att > 0 and math.isfinite(att) else None

        grid = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
        values = [f(x) for x in grid]
        ok = [(x, v) for x, v in zip(grid, values) if v is not None and not self.degenerate(tried[x])]
        if len(ok) < 2 or max(v for _, v in ok) - min(v for _, v in ok) < 0.05:
            return None
        for (a, fa), (b, fb) in zip(ok, ok[1:]):
            if fa * fb <= 0:  # bracketed: secant steps in log g
                la, lb = math.log(a), math.log(b)
                for _ in range(2):
                    if fa == fb:
                        break
                    c = lb - fb * (lb - la) / (fb - fa)
                    fc = f(math.exp(c))
                    if fc is None:
                        break
                    if fc * fb < 0:
                        la, fa = lb, fb
                    lb, fb = c, fc
                break
        good = [x for x in tried if f(x) is not None and not self.degenerate(tried[x])]
        if not good:
            return None
        best = min(good, key=lambda x: abs(f(x)))
        return InitScheme("scaled_normal", float(f"{best:.3g}"), base.nonlinearity), tried[best]


def advise(graph: Any, estimate: Any, model: Any, host: InitHost | None, thresholds: Thresholds,
           direction: str) -> tuple[list[Fix], int]:
    """Ranked fixes for a model whose gradient ``direction`` is vanishing or exploding, and the
    number of counterfactual estimates it took."""
    advisor = Advisor(graph, estimate, thresholds, direction)
    now = estimate.attenuation
    fixes: list[Fix] = []
    degenerate: set[int] = set()
    for cand in Proposals(graph, model, host, direction).all():
        if cand.search_gain:
            found = advisor.search_gain(cand)
            if found is None:
                continue
            scheme, pred = found
            cand = _with_gain(cand, scheme)
        else:
            pred = advisor.predict(cand)
        if not _improves(pred.attenuation, now, thresholds):
            continue
        fix = Fix(cand.title, cand.kind, pred.attenuation, pred.verdict, cand.applicability, detail=cand.detail,
                  edit=cand.edit, size=cand.size, ratios=pred.ratios)
        if advisor.degenerate(pred):
            fix.detail += (f". Caution: the activations' scale would drift by {pred.span:.1f} decades across the "
                           "layers, so the ratio looks better than the training will")
            degenerate.add(id(fix))
        elif pred.tails > max(TAIL_LIMIT, advisor.tails):
            fix.detail += (f". Caution: {100 * pred.tails:.0f}% of the sigmoid/tanh inputs would start beyond "
                           f"+-{TAIL:g}, in the flat tails: the gradient reaches the early layers, but many units "
                           "learn slowly")
            degenerate.add(id(fix))
        fixes.append(fix)
    fixes.sort(key=lambda f: rank_key(f, thresholds, id(f) in degenerate))
    return _distinct(fixes)[:MAX_FIXES], advisor.estimates


def _with_gain(cand: Candidate, scheme: InitScheme) -> Candidate:
    from dataclasses import replace

    from .candidates import init_call, init_name

    title = cand.title.replace("scaled init (gain 1)", init_name(scheme))
    detail = cand.detail.replace(init_call(InitScheme("scaled_normal", 1.0)), init_call(scheme))
    changes = [dict(c, gain=scheme.gain) if c.get("op") == "init" else c for c in cand.changes]
    return replace(cand, title=title, detail=detail, scheme=scheme, changes=changes, search_gain=False)


def outside(att: float | None, thresholds: Thresholds) -> float:
    """Decades outside the healthy band (0 inside it; inf for no attenuation or exactly 0)."""
    if att is None or att <= 0 or not math.isfinite(att):
        return math.inf
    lg = math.log10(att)
    return max(math.log10(thresholds.vanishing) - lg, lg - math.log10(thresholds.exploding), 0.0)


def _improves(att: float | None, now: float | None, thresholds: Thresholds) -> bool:
    """Closer to the healthy margin by half a decade, or into it (a model near a threshold is
    advised too: its GL1xx findings are problems)."""
    margin = Thresholds(*thresholds.margin)
    new, old = outside(att, margin), outside(now, margin)
    return new < old - 0.5 or (new == 0.0 and old > 0.0)


def rank_key(f: Fix, thresholds: Thresholds, degenerate: bool = False) -> tuple:
    att = f.predicted_attenuation
    if f.predicted_verdict == HEALTHY and att is not None:
        margin = thresholds.within_margin(att) and not degenerate
        return (0 if margin else 1, f.size, abs(math.log10(att)))
    return (2, outside(att, thresholds), f.size)


def _distinct(fixes: list[Fix]) -> list[Fix]:
    """Two inits that predict the same attenuation (orthogonal and He on square layers) say the
    same thing: keep the first, which ranks better."""
    out: list[Fix] = []
    for f in fixes:
        if any(o.kind == f.kind and o.predicted_attenuation and f.predicted_attenuation
               and abs(math.log10(o.predicted_attenuation / f.predicted_attenuation)) < 0.01 for o in out):
            continue
        out.append(f)
    return out


def direction_of(verdict: str | None, attenuation: float | None, thresholds: Thresholds) -> str | None:
    """vanishing / exploding when the attenuation lies outside the healthy margin, else None."""
    lo, hi = thresholds.margin
    if verdict == VANISHING or (attenuation is not None and 0 < attenuation < lo):
        return VANISHING
    if verdict == EXPLODING or (attenuation is not None and attenuation > hi):
        return EXPLODING
    return None
