"""The handler registry: one small function per IR kind/op, filled by a decorator.

In the spirit of ``torch.utils.flop_counter.register_flop_formula``: ``@handles(kind, op...)``
registers a function ``(node, inputs, ctx) -> Step``; registering a (kind, op) twice is an error.
A node with no handler is recorded (fvcore's "unhandled ops") and passed through unchanged, so
the user sees exactly which ops the estimate did not model instead of a silent guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .signals import Grad, Signal

ANY_OP = "*"


@dataclass
class Step:
    """What a handler says about one node, forward and backward.

    ``backward(grad_out)`` gives the gradient reaching each of ``node.inputs`` (same order);
    ``weight_grads(grad_out)`` the expected ||dL/dW||^2 of each parameter the node reads;
    ``lipschitz`` a worst-case factor per input for the bound (``bound_is_estimate`` when no true
    bound exists and the expected gain stands in); ``cause`` names the mechanism for the
    attribution of the decay ("sigmoid derivatives", "weights", "normalization"...); ``zero``
    says why the backward gain is exactly zero (a zero-initialized weight or gate), if it is.
    """

    out: Signal
    backward: Callable[[Grad], list[Grad]]
    cause: str = "other"
    weight_grads: Callable[[Grad], dict[str, float]] | None = None
    lipschitz: list[float] | None = None
    bound_is_estimate: bool = False
    zero: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # for the report: sigma_w^2, gains...


Handler = Callable[[Any, list[Signal], Any], Step]

_HANDLERS: dict[tuple[str, str], Handler] = {}


class DuplicateHandler(RuntimeError):
    pass


def handles(kind: str, *ops: str) -> Callable[[Handler], Handler]:
    """Register the decorated function for ``kind`` and each op (no op: every op of the kind)."""

    def deco(fn: Handler) -> Handler:
        for op in ops or (ANY_OP,):
            key = (kind, op)
            if key in _HANDLERS:
                other = _HANDLERS[key]
                raise DuplicateHandler(f"two estimator handlers for {kind}/{op}: "
                                       f"{other.__module__}.{other.__name__} and {fn.__module__}.{fn.__name__}")
            _HANDLERS[key] = fn
        return fn

    return deco


def lookup(kind: str, op: str) -> Handler | None:
    """The handler for a node (``estimate.handlers`` must be imported: importing it registers them)."""
    return _HANDLERS.get((kind, op)) or _HANDLERS.get((kind, ANY_OP))


def registered() -> dict[tuple[str, str], Handler]:
    return dict(_HANDLERS)


@dataclass(frozen=True)
class Unhandled:
    """A node the estimate could not model, as the report shows it."""

    kind: str
    op: str
    where: str  # module name or location
    reason: str  # "no handler" or the handler's error
