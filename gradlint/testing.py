"""A pytest-friendly check that gradients flow through a model, for the user's own test suite.

    from gradlint.testing import assert_gradients_flow

    def test_model_trains():
        assert_gradients_flow(MyNet(), torch.randn(8, 3, 32, 32))

It measures one forward/backward pass (``gradlint.analyze(..., verify=True)``) and raises
``AssertionError`` with the per-layer table when the gradient vanishes, explodes or turns
non-finite, or when any of the chosen GL3xx rules fires.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .pipeline.records import ModelReport

# Rules whose findings fail the assertion by default: the gradient does not reach the first
# layers, or is unusable. Saturation, dead units and histogram shapes explain; pass ``fail_on``
# to make them fail too.
DEFAULT_FAIL_ON = ("GL301", "GL302", "GL307")


class GradientFlowError(AssertionError):
    """The gradient does not flow; ``report`` is the full gradlint report."""

    def __init__(self, message: str, report: ModelReport) -> None:
        super().__init__(message)
        self.report = report


def assert_gradients_flow(model: Any, inputs: Any = None, *, vanishing: float = 1e-3, exploding: float = 1e4,
                          loss: Callable[..., Any] | None = None, fail_on: Sequence[str] = DEFAULT_FAIL_ON,
                          allow_structural_zero: bool = True, seed: int = 0, device: str | None = None) -> ModelReport:
    """Measure one pass; fail with the layer table when the gradient does not flow.

    ``inputs``: as ``gradlint.analyze``'s ``example_inputs`` (a tensor, a tuple, a dict).
    ``vanishing``/``exploding``: thresholds on the first layer's grad_ratio.
    ``fail_on``: GL3xx codes whose findings fail the test. Returns the report when it passes.
    """
    from .api import analyze
    from .config import Config
    from .report.text import layer_table

    config = Config(vanishing_threshold=vanishing, exploding_threshold=exploding, seed=seed)
    if device is not None:
        config.device = device
    else:
        p = next(iter(model.parameters()), None)
        config.device = str(p.device) if p is not None else "cpu"
    codes = sorted(set(fail_on) | {"GL001"})
    report = analyze(model, inputs, verify=True, config=config, loss=loss, select=codes)

    problems = []
    if report.status == "failed" or any(f.code == "GL001" for f in report.findings):
        problems += [f.message for f in report.findings if f.code == "GL001"] or ["the model could not be analysed"]
    if report.summary.measured_verdict == "structural-zero" and not allow_structural_zero:
        problems.append("the gradient reaching the first layers is exactly zero (structural zero)")
    problems += [f"{f.code} {f.message}" for f in report.findings if f.code in fail_on]
    m = report.measurement
    if m is not None and m.collapse:
        # the signal left the dtype's range: whatever the ratio says, these layers do not learn
        problems += [f"measured {c['signal']} {c['kind']} {m.dtype} at {c['layer']} "
                     f"({'exactly 0' if c['value'] == 0 else format(c['value'], '.1e')})" for c in m.collapse]
    if not problems and report.summary.measured_verdict is None and report.status != "failed" \
            and not any(n.startswith("verify: the model has no weight layer") for n in report.notes):
        problems.append("the measured attenuation is undefined (the last weight layer got no gradient)")
    if problems:
        s = report.summary
        att = f"{s.measured_attenuation:.2e}" if s.measured_attenuation is not None else "n/a"
        lines = [f"gradients do not flow through {type(model).__name__}: measured attenuation {att} "
                 f"({s.measured_verdict or 'undefined'}; thresholds {vanishing:g} / {exploding:g})"]
        lines += [f"  - {p}" for p in problems]
        if report.layers:
            lines += ["", layer_table(report).rstrip("\n")]
        raise GradientFlowError("\n".join(lines), report)
    return report
