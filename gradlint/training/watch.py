"""``gradlint.watch(model, every=100)``: per-layer gradient norms and log10|g| histograms during
the user's training, to TensorBoard (or Python logging), with the GL3xx findings raised as
warnings when a layer's gradient collapses mid-training.

    watcher = gradlint.watch(model, every=100, optimizer=opt)   # reads the gradients before opt.step()
    # or, without optimizer=: call watcher.step() after loss.backward()

Every ``every``-th step the gradients the model holds (after the backward, before the optimizer
step: DDP and FSDP2 have reduced them by then) are read like ``--verify`` reads them
(``verify.passes.gradients_now``), summed across ranks for a DDP or FSDP2 model, and rank 0 writes
them: scalars ``grad_norm/<layer>``, ``grad_rms/<layer>``, ``grad_ratio/<layer>``,
``zero_fraction/<layer>`` and histograms ``grad_log10_abs/<layer>`` at the training step, plus
``gradlint/attenuation``. Nothing runs a forward or backward of its own.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from ..ir.verdict import Thresholds
from ..verify.measurement import Measurement

LOG = logging.getLogger("gradlint.watch")
# the rules that judge gradients alone (activations and error signals are not seen while watching)
WATCHED_RULES = ("GL301", "GL302", "GL305", "GL306", "GL307")


class GradientFlowWarning(UserWarning):
    """A GL3xx finding on a watched training step."""


class Watcher:
    """Created by ``watch``; ``step()`` after each backward (or the optimizer hook calls it)."""

    def __init__(self, model: Any, every: int = 100, writer: Any = None, logdir: str | None = None,
                 thresholds: Thresholds | None = None, rules: tuple[str, ...] = WATCHED_RULES,
                 group: Any = None) -> None:
        from .layers import reducer_for, unwrap, weight_layers

        if every < 1:
            raise ValueError(f"watch(every={every}): expected a positive number of steps")
        self.model = model
        self.every = every
        self.thresholds = thresholds or Thresholds()
        self.inner, self.kind = unwrap(model)
        self.reducer = reducer_for(self.kind, group)
        self.rank = self.reducer.rank if self.reducer is not None else 0
        self.layers = weight_layers(self.inner)
        self.rules = rules
        self.steps = 0  # steps seen (calls of step())
        self.history: list[tuple[int, Measurement]] = []  # (step, measurement) of the watched steps
        self.raised: dict[tuple[str, str], int] = {}  # (code, first words) -> step first warned
        self._active: set[tuple[str, str]] = set()
        self._order: dict[str, int] = {}
        self._hooks = [m.register_forward_hook(self._seen(name)) for name, m in self.inner.named_modules()
                       if name in {spec.module for spec in self.layers}]
        self._optimizer_hook = None
        self.writer, self.logdir = self._writer(writer, logdir) if self.rank == 0 else (None, None)

    # -- the forward's order of the layers, from the first forward -------------------------------
    def _seen(self, name: str):
        def hook(module: Any, inputs: Any, output: Any) -> None:
            self._order.setdefault(name, len(self._order))
            if len(self._order) == len(self.layers):
                self._remove_order_hooks()
        return hook

    def _remove_order_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    @staticmethod
    def _writer(writer: Any, logdir: str | None) -> tuple[Any, str | None]:
        if writer is not None:
            return writer, getattr(writer, "log_dir", None) or (writer.get_logdir() if hasattr(writer, "get_logdir") else None)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # no tensorboard: plain logging
            LOG.info("gradlint.watch: tensorboard is not installed; logging gradient norms with Python logging "
                     "(pip install 'gradlint[tensorboard]' for TensorBoard)")
            return logging.getLogger("gradlint.watch"), None
        w = SummaryWriter(log_dir=logdir or "runs/gradlint")
        return w, w.log_dir

    def attach(self, optimizer: Any) -> "Watcher":
        """Read the gradients just before every ``optimizer.step()``."""
        def before_step(opt: Any, args: Any, kwargs: Any) -> None:
            self.step()

        self._optimizer_hook = optimizer.register_step_pre_hook(before_step)
        return self

    # -- one step ----------------------------------------------------------------------------------
    def step(self, global_step: int | None = None) -> Measurement | None:
        """Count a training step; on every ``every``-th one read and log the gradients. Returns the
        measurement on those steps (the same on every rank), else None."""
        self.steps += 1
        step = self.steps if global_step is None else int(global_step)
        if (self.steps - 1) % self.every:
            return None
        from ..verify.passes import gradients_now
        from .measure import in_forward_order

        m = gradients_now(self.inner, self.layers, self.thresholds, self.reducer)
        m.call_order = dict(self._order)
        in_forward_order(m, self.thresholds)
        self.history.append((step, m))
        if self.rank == 0:
            self._write(step, m)
            self._warn(step, m)
        return m

    def _write(self, step: int, m: Measurement) -> None:
        from ..report.tensorboard import _histogram_raw

        w = self.writer
        if isinstance(w, logging.Logger):
            worst = min((lm for lm in m.layers if lm.grad_ratio is not None), key=lambda lm: lm.grad_ratio, default=None)
            w.info("gradlint step %d: attenuation %s (%s); %s", step,
                   f"{m.attenuation:.2e}" if m.attenuation is not None else "n/a", m.verdict or "undefined",
                   ", ".join(f"{lm.module} {lm.grad_norm:.2e}" for lm in m.layers if lm.grad_norm is not None)
                   + (f"; smallest ratio {worst.module} {worst.grad_ratio:.2e}" if worst is not None else ""))
            return
        for lm in m.layers:
            if lm.grad_norm is not None:
                w.add_scalar(f"grad_norm/{lm.module}", lm.grad_norm, step)
                w.add_scalar(f"grad_rms/{lm.module}", lm.grad_rms, step)
            if lm.grad_ratio is not None:
                w.add_scalar(f"grad_ratio/{lm.module}", lm.grad_ratio, step)
            w.add_scalar(f"zero_fraction/{lm.module}", lm.zero_fraction, step)
            raw = _histogram_raw(lm)
            if raw is not None and hasattr(w, "add_histogram_raw"):
                w.add_histogram_raw(f"grad_log10_abs/{lm.module}", global_step=step, **raw)
        if m.attenuation is not None:
            w.add_scalar("gradlint/attenuation", m.attenuation, step)
        if hasattr(w, "flush"):
            w.flush()

    def _warn(self, step: int, m: Measurement) -> None:
        """Warn once per finding when it appears (again after it went away)."""
        from ..config import Config
        from ..rules import RuleContext, all_rules

        config = Config(vanishing_threshold=self.thresholds.vanishing, exploding_threshold=self.thresholds.exploding)
        now: set[tuple[str, str]] = set()
        ctx = RuleContext(graph=None, structure=None, options={}, measurement=m, config=config)
        for code, rule_cls in all_rules().items():
            if code not in self.rules:
                continue
            rule = rule_cls(config.rule_options(code, rule_cls.name))
            ctx.options = rule.opts
            try:
                findings = list(rule.check(ctx))
            except Exception as e:  # noqa: BLE001 - a rule's bug must not stop the user's training
                LOG.debug("gradlint.watch: rule %s failed: %s", code, e)
                continue
            for f in findings:
                key = (f.code, f.message.split(":")[0])
                now.add(key)
                if key not in self._active:
                    self.raised.setdefault(key, step)
                    warnings.warn(f"gradlint step {step}: {f.code} {f.message}", GradientFlowWarning, stacklevel=4)
        self._active = now

    def close(self) -> None:
        """Remove the hooks and flush the writer (a SummaryWriter gradlint opened is closed)."""
        self._remove_order_hooks()
        if self._optimizer_hook is not None:
            self._optimizer_hook.remove()
            self._optimizer_hook = None
        if self.writer is not None and hasattr(self.writer, "flush"):
            self.writer.flush()


def watch(model: Any, every: int = 100, writer: Any = None, *, optimizer: Any = None, logdir: str | None = None,
          thresholds: Thresholds | None = None, group: Any = None) -> Watcher:
    """Log per-layer gradient norms and histograms every ``every`` steps.

    ``writer``: a ``SummaryWriter`` (or anything with ``add_scalar``/``add_histogram_raw``), a
    ``logging.Logger``, or None: a new ``SummaryWriter`` in ``logdir`` (default
    ``runs/gradlint``), or Python logging when tensorboard is not installed. ``optimizer``: read
    the gradients before each of its steps; without it, call ``watcher.step()`` after each backward.
    """
    w = Watcher(model, every=every, writer=writer, logdir=logdir, thresholds=thresholds, group=group)
    if optimizer is not None:
        w.attach(optimizer)
    return w
