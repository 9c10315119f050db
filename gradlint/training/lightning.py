"""A Lightning callback that watches gradient flow (``pip install 'gradlint[lightning]'``).

    from gradlint.training.lightning import GradlintCallback
    trainer = lightning.Trainer(callbacks=[GradlintCallback(every=100)])

It reads the gradients in ``on_before_optimizer_step`` (after the backward and the gradient
reduction, before the step) every ``every`` optimizer steps, and writes to the trainer's
TensorBoard logger when it has one, else to ``logdir``.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]

from .watch import Watcher


class GradlintCallback(Callback):
    def __init__(self, every: int = 100, logdir: str | None = None, **watch_options: Any) -> None:
        super().__init__()
        self.every = every
        self.logdir = logdir
        self.watch_options = watch_options
        self.watcher: Watcher | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        writer = None
        for logger in getattr(trainer, "loggers", None) or []:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_histogram_raw"):  # a TensorBoard SummaryWriter
                writer = experiment
                break
        self.watcher = Watcher(pl_module, every=self.every, writer=writer, logdir=self.logdir, **self.watch_options)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.watcher is not None:
            self.watcher.step(trainer.global_step)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.watcher is not None:
            self.watcher.close()
