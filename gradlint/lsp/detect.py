"""Which files the language server analyses: those that may define models.

Analysing a file imports it and torch in a subprocess (seconds), so files that cannot define a
model are skipped on a plain text check: a torch import, or a class whose bases mention
``Module`` (``nn.Module``, ``torch.nn.Module``, a project's own ``MyModule`` base). A false
positive only costs one analysis that finds no models.
"""

from __future__ import annotations

import re

_TORCH_IMPORT = re.compile(r"^[ \t]*(?:import[ \t]+torch\b|from[ \t]+torch\b)", re.MULTILINE)
_MODULE_CLASS = re.compile(r"^[ \t]*class[ \t]+\w+[ \t]*\([^)]*Module", re.MULTILINE)


def defines_models(text: str) -> bool:
    return bool(_TORCH_IMPORT.search(text) or _MODULE_CLASS.search(text))
