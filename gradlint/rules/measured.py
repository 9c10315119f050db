"""Helpers shared by the GL3xx rules, which read ``ctx.measurement`` (a ``verify.Measurement``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")


def by_location(items: Iterable[T], location: Callable[[T], Any]) -> list[list[T]]:
    """Group items by source location, keeping first-seen order: a block class repeated N times
    is one line to change, so it is one finding."""
    groups: dict[Any, list[T]] = {}
    for item in items:
        groups.setdefault(location(item), []).append(item)
    return list(groups.values())


def estimated_structural_zeros(ctx: Any) -> set[str]:
    """Weight layers the estimate predicts an exactly-zero gradient for and explains (a zero-initialized
    weight, gate or normalization scale: GL203's finding), when the estimate ran."""
    est = getattr(ctx, "estimate", None)
    if est is None:
        return set()
    return {ly.module for ly in est.layers if ly.zero and ly.grad_rms == 0.0}


def names(items: list[str], limit: int = 3) -> str:
    """'a, b, c' or 'a, b ... z (12 layers)'."""
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit - 1])} ... {items[-1]} ({len(items)} in all)"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def threshold_text(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")


@dataclass
class SiteGroup:
    """Flagged activation sites that share one line of code."""

    sites: list[Any]  # verify.measurement.ActivationSite
    worst: Any
    share: float  # the family's red-flag share, pooled over every call at this line
    where: str  # which modules or calls, for the message


def flagged_sites(sites: Iterable[Any], family: str, flagged: Callable[[Any], bool]) -> list[SiteGroup]:
    """Activation sites of ``family`` ("saturating" or "relu") for which ``flagged`` holds,
    one group per source line."""
    hits = [a for a in sites if a.family == family and a.count and flagged(a)]
    out = []
    for group in by_location(hits, lambda a: a.location):
        share = sum(a.fraction * a.count for a in group) / sum(a.count for a in group)
        where = names([a.module or (f"after {a.layer}" if a.layer else a.op) for a in group])
        out.append(SiteGroup(group, max(group, key=lambda a: a.fraction), share, where))
    return out
