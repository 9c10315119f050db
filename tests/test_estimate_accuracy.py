"""Predictions against the contract's measurement on small models.

Each model is analysed by the real pipeline (a model file, ``example_inputs()``), then measured
with ``gradlint.verify.measure`` (median over 3 seeds, in double precision). Tolerances: the
median |log10 error| of grad_ratio over the layers. At these widths (64-128) the weight draw
alone moves a deep stack's measured ratio by ~0.1 decade per seed (Hanin 2018: the log-spread
grows with sum 1/width), and the benchmark (``benchmarks/RESULTS.md``) reports the estimator at
~0.03 decades on MLPs; 0.25 leaves room for that noise and still catches a wrong formula (a
missing BatchNorm batch correction, a sigmoid offset counted wrong, ... are all > 0.3).
"""

from __future__ import annotations

import math
import statistics

import pytest
from helpers import estimate_and_measurement

HEADER = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

MODELS = {
    "sigmoid_mlp": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(128, 128) for _ in range(12)])
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        for fc in self.fcs:
            x = torch.sigmoid(fc(x))
        return self.head(x)


def example_inputs():
    return (torch.randn(32, 128),)
""", 0.25),
    "default_relu_mlp": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(128, 128), nn.ReLU())])
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.body(x))


def example_inputs():
    return (torch.randn(32, 128),)
""", 0.25),
    "bn_relu_mlp": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for _ in range(12):
            layers += [nn.Linear(128, 128), nn.BatchNorm1d(128), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.body(x))


def example_inputs():
    return (torch.randn(16, 128),)
""", 0.25),
    "sigmoid_layernorm_mlp": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(128, 128) for _ in range(10)])
        self.lns = nn.ModuleList([nn.LayerNorm(128) for _ in range(10)])
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        for fc, ln in zip(self.fcs, self.lns):
            x = torch.sigmoid(ln(fc(x)))
        return self.head(x)


def example_inputs():
    return (torch.randn(32, 128),)
""", 0.25),
    "small_cnn": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.convs = nn.ModuleList([nn.Conv2d(16, 16, 3, padding=1) for _ in range(5)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(16) for _ in range(5)])
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = F.relu(bn(conv(x)))
            if i == 2:
                x = F.max_pool2d(x, 2)
        return self.head(x.mean((2, 3)))


def example_inputs():
    return (torch.randn(16, 3, 12, 12),)
""", 0.3),
    "lstm": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(16, 64, batch_first=True)
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def example_inputs():
    return (torch.randn(32, 12, 16),)
""", 0.3),
    "preln_transformer": ("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(16, 64)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(64, 4, 128, 0.0, batch_first=True, norm_first=True)
                                     for _ in range(3)])
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def example_inputs():
    return (torch.randn(8, 12, 16),)
""", 0.35),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_prediction_matches_measurement(name, tmp_path):
    source, tolerance = MODELS[name]
    path = tmp_path / f"acc_{name}.py"
    path.write_text(HEADER + source, encoding="utf-8")
    model, est, measured = estimate_and_measurement(path)
    errors = [abs(math.log10(e / m)) for e, m in zip(est[:-1], measured[:-1]) if e and m]
    assert len(errors) == len(est) - 1
    assert statistics.median(errors) < tolerance, list(zip(est, measured))
    assert model.estimate.unhandled == []
