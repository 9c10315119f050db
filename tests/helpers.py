"""In-process analysis for tests: faster than a subprocess per case (torch imports once)."""

from __future__ import annotations

from pathlib import Path

from gradlint.config import Config
from gradlint.pipeline.run import run
from gradlint.rules import select_rules


def analyze_path(path: Path | str, select: list[str] | None = None, config: Config | None = None, **overrides):
    config = config or Config()
    for k, v in overrides.items():
        setattr(config, k, v)
    enabled = select_rules(select if select is not None else config.select, config.extend_select, config.ignore)
    report, session = run([str(path)], config, enabled)
    assert not session.internal_errors, session.internal_errors
    return report


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


def estimate_and_measurement(path: Path | str, target: str = "Net", select: list[str] | None = None):
    """Analyse a model file (class ``target`` and ``example_inputs()``) and measure the same weight
    layers' grad_ratio with the contract's measurement (``gradlint.verify.measure``, double
    precision, median of 3 seeds). Returns (model report, estimated ratios, measured ratios)."""
    import importlib.util
    import statistics
    import sys

    import torch

    from gradlint.verify.measure import grad_ratios, measure

    path = Path(path)
    model = analyze_path(f"{path}::{target}", select=select or ["GL2"]).models[0]
    layers = [(n.module, list(n.attrs["weights"])) for n in model.graph.weight_layers()]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    runs = []
    for seed in range(3):
        torch.manual_seed(seed)
        net = getattr(module, target)().double()
        torch.manual_seed(100 + seed)
        args = tuple(a.double() if a.is_floating_point() else a for a in module.example_inputs())
        runs.append(grad_ratios(measure(net, args, {}, layers, seed=seed)))
    measured = [statistics.median(r[i] for r in runs) for i in range(len(layers))]
    return model, [ly.estimate["grad_ratio"] for ly in model.layers], measured
