"""Helpers shared by the GL3xx rules, which read ``ctx.measurement`` (a ``verify.Measurement``)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")


def by_location(items: Iterable[T], location: Callable[[T], Any]) -> list[list[T]]:
    """Group items by source location, keeping first-seen order: a block class repeated N times
    is one line to change, so it is one finding."""
    groups: dict[Any, list[T]] = {}
    for item in items:
        groups.setdefault(location(item), []).append(item)
    return list(groups.values())


def names(items: list[str], limit: int = 3) -> str:
    """'a, b, c' or 'a, b ... z (12 layers)'."""
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit - 1])} ... {items[-1]} ({len(items)} in all)"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def threshold_text(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")
