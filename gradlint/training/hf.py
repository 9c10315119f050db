"""A Hugging Face ``TrainerCallback`` that watches gradient flow (``pip install 'gradlint[hf]'``).

    from gradlint.training.hf import GradlintTrainerCallback
    Trainer(model=model, args=args, train_dataset=ds, callbacks=[GradlintTrainerCallback(every=100)])

It reads the gradients in ``on_pre_optimizer_step`` (after the backward and gradient clipping,
before the step) every ``every`` optimizer steps, and writes TensorBoard events to ``logdir``
(default: ``<output_dir>/gradlint``).
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

from .watch import Watcher


class GradlintTrainerCallback(TrainerCallback):
    def __init__(self, every: int = 100, logdir: str | None = None, **watch_options: Any) -> None:
        self.every = every
        self.logdir = logdir
        self.watch_options = watch_options
        self.watcher: Watcher | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None:
            logdir = self.logdir or os.path.join(args.output_dir, "gradlint")
            self.watcher = Watcher(model, every=self.every, logdir=logdir, **self.watch_options)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.watcher is not None:
            self.watcher.step(state.global_step + 1)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.watcher is not None:
            self.watcher.close()
