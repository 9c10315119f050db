"""``x.max(dim)[0]`` (VOLO's auxiliary head, max-over-tokens readouts) keeps its gradient path:
the (values, indices) result once dropped the branch, so the last layer got no gradient and the
whole estimate came out empty."""

from __future__ import annotations

import math
import statistics

import pytest
from helpers import analyze_path, estimate_and_measurement

MAX_READOUT = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(32, 32) for _ in range(4)])
        self.head = nn.Linear(32, 4)
        self.aux = nn.Linear(32, 4)

    def forward(self, x):
        for fc in self.fcs:
            x = torch.tanh(fc(x))
        return self.head(x.mean(1)) + 0.5 * self.aux(x).{reduce}


def example_inputs():
    return (torch.randn(16, 6, 32),)
"""


@pytest.mark.parametrize("reduce", ["max(1)[0]", "max(dim=1).values", "min(1)[0]"])
def test_a_max_over_tokens_readout_keeps_its_gradient(reduce, tmp_path):
    path = tmp_path / "acc_max.py"
    path.write_text(MAX_READOUT.replace("{reduce}", reduce), encoding="utf-8")
    model, est, measured = estimate_and_measurement(path)
    assert model.estimate.unhandled == []
    assert all(e is not None and e > 0 for e in est), est
    errors = [abs(math.log10(e / m)) for e, m in zip(est[:-1], measured[:-1])]
    assert statistics.median(errors) < 0.25, list(zip(est, measured))


DETACHED_LAST = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 8)
        self.aux = nn.Linear(8, 2)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = torch.relu(self.body(x))
        return self.aux(y) + self.head(y).detach()


def example_inputs():
    return (torch.randn(4, 8),)
"""


def test_no_gradient_at_the_last_layer_is_said_not_left_blank(tmp_path):
    path = tmp_path / "detached.py"
    path.write_text(DETACHED_LAST, encoding="utf-8")
    model = analyze_path(path, select=["GL2"]).models[0]
    assert model.summary.estimated_attenuation is None
    assert any("no gradient reaches the last weight layer (head)" in n for n in model.notes), model.notes
