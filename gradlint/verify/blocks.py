"""The repeated blocks of a model: the unit FSDP2 shards (one ``fully_shard`` per block) and the
unit ``--depth K`` keeps K of.

A run of repeated blocks is an ``nn.ModuleList`` or ``nn.Sequential`` whose children (two or more)
are all of one class and own parameters: Llama's ``model.layers``, a ResNet stage, a ViT's
``blocks``. When a model has several such containers (ResNet's four stages), the one holding the
most parameters is the model's repeated blocks; ``blocks_by_name`` picks another by its name.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any


@dataclass
class Blocks:
    """One container of repeated blocks."""

    container: str  # qualified name of the ModuleList / Sequential ("model.layers")
    block_type: str  # the children's class name ("LlamaDecoderLayer")
    count: int  # children
    parameters: int  # parameters in all of them

    def describe(self) -> str:
        return f"{self.container} ({self.count} x {self.block_type})"


def _parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _inside(name: str, container: str) -> bool:
    return name.startswith(container + ".") if container else bool(name)


def repeated_blocks(model: Any) -> list[Blocks]:
    """Every container of repeated blocks, most parameters first. Containers nested inside
    another container's blocks are left out (the outer blocks are the unit)."""
    import torch.nn as nn

    found: list[Blocks] = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)):
            continue
        children = list(module.children())
        if len(children) < 2 or len({type(c) for c in children}) != 1:
            continue
        n = _parameters(module)
        if n == 0:
            continue
        if any(_inside(name, b.container) for b in found):
            continue
        found.append(Blocks(name, type(children[0]).__name__, len(children), n))
    found.sort(key=lambda b: -b.parameters)
    return found


def main_blocks(model: Any) -> Blocks | None:
    """The model's repeated blocks: the container holding the most parameters, or None."""
    found = repeated_blocks(model)
    return found[0] if found else None


def units_by_policy(model: Any, policy: list[str] | None) -> list[str]:
    """Qualified names of the modules to wrap with ``fully_shard``, in an order where every unit
    comes before the modules that contain it.

    ``policy`` None or empty: one unit per child of every container of repeated blocks (Llama's
    80 decoder layers; a ResNet's stages' blocks). Otherwise a list of class names
    (``"LlamaDecoderLayer"``) or qualified-name patterns (``"model.layers.*"``): every module that
    matches one. The root is always a unit of its own too (the caller wraps it last).
    """
    if not policy:
        names = []
        for b in repeated_blocks(model):
            container = model.get_submodule(b.container)
            names += [f"{b.container}.{child}" if b.container else child for child, _ in container.named_children()]
        return names
    out = []
    for name, module in model.named_modules():
        if not name:
            continue
        if any(type(module).__name__ == p or fnmatch.fnmatchcase(name, p) for p in policy):
            out.append(name)
    # deepest first: fully_shard on a parent after its children
    out.sort(key=lambda n: -n.count("."))
    return out
