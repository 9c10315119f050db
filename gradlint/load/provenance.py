"""Which line of the user's code made this module?

While a model is built we wrap ``nn.Module.__init__`` and, for every module, walk the Python stack
out of the module's own ``__init__`` chain and out of library code to the first frame of the
user's project (``ir.source.user_location``).
"""

from __future__ import annotations

import sys
import types
import weakref

from ..ir.source import Location, outermost_nonlibrary_or_first, user_location


class ConstructionRecorder:
    """Context manager: records where each ``nn.Module`` is constructed.

    ``sites[module]`` is the user's line that created it: for ``self.act = nn.Sigmoid()`` inside a
    block class, that line; for a torchvision model built by ``resnet50()``, the user's call.
    """

    def __init__(self) -> None:
        self.sites: "weakref.WeakKeyDictionary[object, Location]" = weakref.WeakKeyDictionary()
        self._original = None

    def __enter__(self) -> "ConstructionRecorder":
        import torch.nn as nn

        original = nn.Module.__init__
        self._original = original
        sites = self.sites

        def recording_init(module, *args, **kwargs):
            original(module, *args, **kwargs)
            if module in sites:  # __init__ chains call Module.__init__ once; be safe anyway
                return

            def own_init(frame: types.FrameType) -> bool:
                # Frames of the module's own constructor chain (Block.__init__ -> super()...).
                return frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module

            frame = sys._getframe(1)
            loc = user_location(frame, skip=own_init)
            if loc is None:
                loc = outermost_nonlibrary_or_first(frame)
            if loc is not None:
                sites[module] = loc

        nn.Module.__init__ = recording_init
        return self

    def __exit__(self, *exc) -> None:
        import torch.nn as nn

        nn.Module.__init__ = self._original
