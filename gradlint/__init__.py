"""gradlint: find vanishing and exploding gradients in PyTorch models before training.

The command line is ``gradlint``; from Python, ``gradlint.analyze(model, example_inputs=...)``, and
inside a training loop ``gradlint.measure(model, inputs)`` and ``gradlint.watch(model, every=100)``.
Importing this package does not import torch.
"""

from __future__ import annotations

from .version import __version__

__all__ = ["__version__", "analyze", "measure", "watch"]


def analyze(*args, **kwargs):
    """Analyse an in-memory ``nn.Module``; see :func:`gradlint.api.analyze`."""
    from .api import analyze as _analyze

    return _analyze(*args, **kwargs)


def measure(*args, **kwargs):
    """One measured pass of a live (plain, DDP or FSDP2) model; see :func:`gradlint.training.measure`."""
    from .training import measure as _measure

    return _measure(*args, **kwargs)


def watch(*args, **kwargs):
    """Log per-layer gradients during training; see :func:`gradlint.training.watch`."""
    from .training import watch as _watch

    return _watch(*args, **kwargs)
