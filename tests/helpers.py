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


def estimate_and_measurement(path: Path | str, target: str = "Net", select: list[str] | None = None,
                             absolute: bool = False):
    """Analyse a model file (class ``target`` and ``example_inputs()``) and measure the same weight
    layers' grad_ratio with the contract's measurement (``gradlint.verify.measure``, double
    precision, median of 3 seeds). Returns (model report, estimated ratios, measured ratios);
    ``absolute``: the layers' absolute grad_rms instead of the ratios."""
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
        example = module.example_inputs()
        example = example if isinstance(example, tuple) else (example,)
        args = tuple(a.double() if a.is_floating_point() else a for a in example)
        grads = measure(net, args, {}, layers, seed=seed)
        runs.append([g.grad_rms for g in grads] if absolute else grad_ratios(grads))
    measured = [statistics.median(r[i] for r in runs) for i in range(len(layers))]
    key = "grad_rms" if absolute else "grad_ratio"
    return model, [ly.estimate[key] for ly in model.weight_layers], measured


def log_errors(estimated, measured) -> list[float]:
    """|log10(estimate / measurement)| per layer (layers where either is 0 or missing left out)."""
    import math

    return [abs(math.log10(e / m)) for e, m in zip(estimated, measured) if e and m and e > 0 and m > 0]
