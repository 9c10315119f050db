"""One small function per IR kind/op; importing this package registers them all."""

from . import (  # noqa: F401
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
