"""The files a run writes beside its text output: ``--plot`` (PNG) and ``--tensorboard`` (event
files), one per analysed model that was measured. Drawn from the finished report, so a result
computed in a worker process or read from the cache draws the same picture."""

from __future__ import annotations

from typing import Any


class OutputError(Exception):
    """A file could not be written (a usage error: exit code 2)."""


def write_files(report: Any, config: Any) -> list[str]:
    """Write the requested files for every measured model; returns their paths."""
    written: list[str] = []
    measured = [m for m in report.models if m.measurement is not None]
    for index, model in enumerate(measured):
        name = model.target.rpartition("::")[2] or model.target
        if config.plot:
            from .plot import plot_path, write_plot

            path = plot_path(config.plot, name, index)
            try:
                write_plot(path, model, model.measurement)
            except OSError as e:
                raise OutputError(f"cannot write --plot {path}: {e.strerror or e}") from None
            model.output_files.append(path)
            written.append(path)
        if config.tensorboard:
            from .tensorboard import write_events

            try:
                run_dir = write_events(config.tensorboard, name, model, model.measurement)
            except OSError as e:
                raise OutputError(f"cannot write --tensorboard {config.tensorboard}: {e.strerror or e}") from None
            model.output_files.append(run_dir)
            written.append(run_dir)
    return written
