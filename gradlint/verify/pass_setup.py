"""What the measured pass needs besides the model, shared by the one-process and the sharded pass:
the loss function, the example inputs on the pass's device, and where a failure points."""

from __future__ import annotations

import contextlib
from typing import Any

from ..ir.errors import StageError


@contextlib.contextmanager
def located_at(fallback: Any):
    """A verify failure with no line of the user's code points at the model's definition."""
    try:
        yield
    except StageError as e:
        if e.location is None:
            e.location = fallback
        raise


def loss_function(loaded: Any, config: Any) -> tuple[Any, str | None]:
    """``loss = "name"`` in the config names a function in the model file; else the file's
    ``gradlint_loss``; else the random projection (None)."""
    if config.loss:
        fn = getattr(getattr(loaded, "module", None), config.loss, None) if loaded is not None else None
        if not callable(fn):
            raise StageError("verify", f"loss {config.loss!r}: the model file defines no function of that name", None,
                             f"define `def {config.loss}(output): ...` in the file, or drop the `loss` setting")
        return fn, f"{config.loss}()"
    fn = getattr(loaded, "loss", None)
    if callable(fn):
        return fn, f"{getattr(fn, '__name__', 'gradlint_loss')}()"
    return None, None


def inputs_for(vbuilt: Any, loaded: Any, config: Any, device: str, analysed: Any) -> Any:
    from ..capture.inputs import example_inputs_for

    try:
        # the same image side the capture settled on (Inception's 299 after 224 was rejected)
        return example_inputs_for(vbuilt, loaded, config, device, side=getattr(analysed, "side", None))
    except StageError as e:
        raise StageError("verify", f"building inputs on {device} failed: {e.message}", e.location, e.hint) from None
