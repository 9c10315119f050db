"""Loading ``torch._dynamo`` only when something really uses it.

Many of torch's Python kernels (every meta-device ``add``, say) are
wrapped by ``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` only to mark them
"not to be compiled" — about as long as importing torch itself, paid by every cold
``gradlint file.py``. Nothing can be compiling before ``torch._dynamo`` is imported, so until
then that mark means nothing: each wrapped function gets a stand-in that calls it directly, and
that asks ``torch._dynamo`` for the real mark as soon as something else (``torch.export``, a
user's ``torch.compile``) has imported it. It fills the cache slot torch's own wrapper reads
(``fn.__dynamo_disable``); on a torch whose wrapper looks different it does nothing.
"""

from __future__ import annotations

import functools
import gc
import sys
import types
from typing import Any


class _UntilDynamoLoads:
    """Calls ``fn`` directly while ``torch._dynamo`` is not imported, then as torch would."""

    __slots__ = ("fn", "recursive")

    def __init__(self, fn: Any, recursive: bool) -> None:
        self.fn = fn
        self.recursive = recursive

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dynamo = sys.modules.get("torch._dynamo")
        disable = getattr(dynamo, "disable", None) if dynamo is not None else None
        if disable is None:  # not imported (or still importing): nothing compiles
            return self.fn(*args, **kwargs)
        real = disable(self.fn, self.recursive, wrapping=False)
        setattr(self.fn, "__dynamo_disable", real)
        return real(*args, **kwargs)


@functools.cache
def _wrapper_code() -> Any:
    """The code object of torch's ``_disable_dynamo`` wrapper, or None on a torch whose wrapper
    looks different."""
    try:
        import torch._compile

        code = torch._compile._disable_dynamo(lambda: None).__code__
    except (ImportError, AttributeError, TypeError):
        return None
    return code if code.co_freevars == ("fn", "recursive") else None


def _seed(wrapper: Any) -> bool:
    fn, recursive = (cell.cell_contents for cell in wrapper.__closure__)
    if getattr(fn, "__dynamo_disable", None) is not None:
        return False
    try:
        setattr(fn, "__dynamo_disable", _UntilDynamoLoads(fn, recursive))
    except (AttributeError, TypeError):  # a builtin: leave it to torch
        return False
    return True


def defer_dynamo_import() -> int:
    """Give every ``torch._disable_dynamo`` wrapper alive now its stand-in; returns how many."""
    if "torch._dynamo" in sys.modules:
        return 0
    code = _wrapper_code()
    if code is None:
        return 0
    return sum(_seed(obj) for obj in gc.get_objects()
               if type(obj) is types.FunctionType and obj.__code__ is code)


def defer_one(wrapper: Any) -> None:
    """The same for one wrapper made later (a dispatch mode's ``__torch_dispatch__``, which
    torch wraps when the class is created)."""
    if "torch._dynamo" in sys.modules or type(wrapper) is not types.FunctionType:
        return
    code = _wrapper_code()
    if code is not None and wrapper.__code__ is code:
        _seed(wrapper)
