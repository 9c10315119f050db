"""Where an init method can be added for a built model: the factory function the target names,
else the model's class when the user's project defines it."""

from __future__ import annotations

import inspect
from typing import Any

from ..ir.source import display_path, is_library_file
from .anatomy import user_class_source
from .candidates import InitHost


def init_host(built: Any) -> InitHost | None:
    factory = getattr(built.candidate, "factory", None)
    if inspect.isfunction(factory) and factory.__name__ != "<lambda>" and "<locals>" not in factory.__qualname__:
        try:
            file = inspect.getsourcefile(factory)
        except TypeError:
            file = None
        if file and not is_library_file(file):
            return InitHost(display_path(file), function=factory.__name__)
    cls = type(built.model)
    if "<locals>" in cls.__qualname__:
        return None
    span = user_class_source(cls)
    return InitHost(span[0], cls=cls.__name__) if span is not None else None
