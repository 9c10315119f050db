"""gradlint inside the user's own training: ``measure`` one pass of a (possibly DDP- or
FSDP2-wrapped) model in the user's process group, ``watch`` per-layer gradients during training,
and thin adapters for Lightning (``training.lightning``) and Hugging Face's Trainer
(``training.hf``), each imported only when used.
"""

from .measure import measure
from .watch import Watcher, watch

__all__ = ["measure", "watch", "Watcher"]
