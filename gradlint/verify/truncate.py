"""``--depth K``: a copy of the model with only K of its repeated blocks, same width, for models too
large to measure whole.

The copy is built by the model's own code, on the device: the repeated blocks' class is patched
while the factory runs so that every block after the K-th is constructed on the meta device
(no memory, no init), then those blocks are dropped from their container. So the first K blocks
and everything around them (embeddings, final norm, head) carry the weights the model's own init
code gives them, as in the full model. A meta twin of the copy (the full meta model, truncated the
same way) is what the graph is captured from.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
from typing import Any, Iterator

from ..ir.errors import StageError
from .blocks import Blocks, main_blocks


@contextlib.contextmanager
def later_blocks_on_meta(block_type: type, keep: int) -> Iterator[list[int]]:
    """While active, the ``keep + 1``-th and later instances of ``block_type`` are built on meta."""
    import torch

    original = block_type.__init__
    made = [0]

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is not block_type or torch.empty(0).is_meta:  # a subclass's super(), or the meta build
            return original(self, *args, **kwargs)
        made[0] += 1
        if made[0] > keep:
            with torch.device("meta"):
                return original(self, *args, **kwargs)
        return original(self, *args, **kwargs)

    block_type.__init__ = init  # type: ignore[method-assign]
    try:
        yield made
    finally:
        block_type.__init__ = original  # type: ignore[method-assign]


def _truncate(model: Any, blocks: Blocks, keep: int) -> None:
    container = model.get_submodule(blocks.container) if blocks.container else model
    del container[keep:]


def truncated_copy(built: Any, keep: int, device: str) -> tuple[Any, Blocks]:
    """A ``BuiltModel`` of the copy with ``keep`` blocks (materialized on ``device``), and the
    blocks it was cut from. ``StageError("verify", ...)`` when the model has no repeated blocks,
    or the copy would not fit."""
    from ..load.build import build_model, count_parameters
    from .resources import available_bytes, gib, limited_by_cap, parameter_bytes

    if getattr(built.candidate, "prebuilt", None) is not None:
        raise StageError("verify", f"--depth {keep}: the model was built by the file at import (a module-level "
                         "instance), so no copy with fewer blocks can be constructed", built.candidate.location,
                         "name a class or a factory as the target (file.py::Net(...)), or drop --depth")
    meta = built.meta_model if built.meta_model is not None else built.model
    blocks = main_blocks(meta)
    if blocks is None:
        raise StageError("verify", f"--depth {keep}: the model has no repeated blocks (an nn.ModuleList or "
                         "nn.Sequential of two or more children of one class) to keep fewer of",
                         built.candidate.location, "drop --depth, or build the blocks in an nn.ModuleList")
    twin = copy.deepcopy(built.meta_model) if built.meta_model is not None else None
    block_type = type((meta.get_submodule(blocks.container) if blocks.container else meta)[0])
    if twin is not None:
        _truncate(twin, blocks, keep)
        need = 2 * parameter_bytes(twin)
        free = available_bytes(device)
        if free is not None and need > 0.9 * free:
            capped = limited_by_cap(device)
            raise StageError("verify", f"--depth {keep}: the copy with {keep} of {blocks.count} blocks needs about "
                             f"{gib(need)} on {device} for weights and gradients, and {gib(free)} is free"
                             + (" under the memory cap" if capped else ""), built.candidate.location,
                             "use a smaller --depth" + (", or raise memory-limit (--memory-limit 0: no cap)"
                                                        if capped else ", or another --device"))
    try:
        with later_blocks_on_meta(block_type, keep) as made:
            vbuilt = build_model(built.candidate, sys.maxsize, device=device, twin=False)
    except StageError as e:
        raise StageError("verify", f"--depth {keep}: building the copy on {device} failed: {e.message}",
                         e.location, e.hint) from None
    model = vbuilt.model
    _truncate(model, blocks, keep)
    if made[0] < blocks.count or any(p.is_meta for p in model.parameters()):
        raise StageError("verify", f"--depth {keep}: the blocks of {blocks.container} are not built by their "
                         f"class's constructor ({made[0]} of {blocks.count} constructions seen; copies made with "
                         "copy.deepcopy cannot be left out)", built.candidate.location,
                         "build each block with its constructor (nn.ModuleList([Block(...) for _ in range(n)]))")
    out = dataclasses.replace(vbuilt, model=model, meta_model=twin, materialized=True,
                              parameters=count_parameters(model), notes=[])
    return out, blocks
