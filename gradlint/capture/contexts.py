"""Contexts the capture and the input probes run the model's forward in."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def quiet_torch():
    """torch.export logs graph dumps and warnings on failure; they are ours to summarize."""
    import logging
    import warnings

    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def values_unknown_like_a_compiler():
    """Meta tensors have shapes but no values, as under torch.compile/export. Libraries check
    ``torch.compiler.is_compiling()`` to skip value-dependent work they cannot trace (Hugging
    Face's packed-sequence and mask checks call ``.item()``); say yes while the forward runs on
    meta tensors, so those models take the path they take when exported — in ~0.05 s, not export's
    seconds."""
    import torch

    original = torch.compiler.is_compiling
    torch.compiler.is_compiling = lambda: True
    try:
        yield
    finally:
        torch.compiler.is_compiling = original
