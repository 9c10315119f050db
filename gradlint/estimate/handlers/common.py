"""Helpers shared by handlers."""

from __future__ import annotations


def clip01(x: float) -> float:
    """A correlation or a share, kept in [0, 1] against rounding."""
    return min(max(x, 0.0), 1.0)
