"""One small function per IR kind/op; importing this package registers them all
(``estimate/registry.py``), and ``lookup`` here is the filled registry's."""

from ..registry import lookup, registered
from . import (  # noqa: F401 - importing each module registers its handlers
    activation,
    attention,
    dense,
    elementwise,
    io,
    merge,
    norm,
    pool,
    recurrent,
    shape,
)

__all__ = ["lookup", "registered"]
