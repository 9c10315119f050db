"""gradlint: find vanishing and exploding gradients in PyTorch models before training.

The command line is ``gradlint``; from Python, ``gradlint.analyze(model, example_inputs=...)``.
Importing this package does not import torch.
"""

from __future__ import annotations

from .version import __version__

__all__ = ["__version__", "analyze"]


def analyze(*args, **kwargs):
    """Analyse an in-memory ``nn.Module``; see :func:`gradlint.api.analyze`."""
    from .api import analyze as _analyze

    return _analyze(*args, **kwargs)
