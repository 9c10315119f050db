"""GL104's evidence: the weights (when materialized) and the code (init recorded while building,
init code in the source) must agree before a layer counts as default-initialized."""

from __future__ import annotations

import pytest
from helpers import analyze_path, codes

from gradlint.config import Config

DEFAULT_MLP = """
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, depth=8, width=64):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
{init}
    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
"""


def mlp(init: str = "") -> str:
    return DEFAULT_MLP.format(init=init)


def init_report(report):
    return report.models[0]


@pytest.mark.parametrize("materialize_limit", [10**9, 0], ids=["materialized", "meta-only"])
def test_untouched_default_init_is_flagged(write, materialize_limit):
    report = analyze_path(write("m.py", mlp()), select=["GL104"], config=Config(materialize_limit=materialize_limit))
    assert codes(report) == ["GL104"]
    msg = report.findings[0].message
    assert "8 Linear layers" in msg
    if materialize_limit:
        import re

        ratio = float(re.search(r"Var\(W\) = ([0-9.]+) x", msg).group(1))  # the weights were read
        assert 0.9 <= ratio <= 1.1
    else:
        assert "not materialized" in msg


INITS = {
    "nn.init in a loop": "        for layer in self.layers:\n            nn.init.kaiming_normal_(layer.weight)\n",
    "in-place .data.normal_": "        for layer in self.layers:\n            layer.weight.data.normal_(0, 0.1)\n",
    "apply(fn)": "        self.apply(self._init)\n\n    @staticmethod\n    def _init(m):\n        if isinstance(m, nn.Linear):\n            nn.init.orthogonal_(m.weight)\n",
}


@pytest.mark.parametrize("init", list(INITS.values()), ids=list(INITS))
@pytest.mark.parametrize("materialize_limit", [10**9, 0], ids=["materialized", "meta-only"])
def test_custom_init_is_recognized(write, init, materialize_limit):
    report = analyze_path(write("m.py", mlp(init + "\n")), select=["GL104"],
                          config=Config(materialize_limit=materialize_limit))
    assert codes(report) == []


def test_init_code_that_skips_these_layers_still_flags_them(write):
    # The init loop only touches Conv2d: the Linear layers keep the default.
    init = ("        for m in self.modules():\n            if isinstance(m, nn.Conv2d):\n"
            "                nn.init.kaiming_normal_(m.weight)\n        self.layers[0].bias.data.zero_()\n")
    report = analyze_path(write("m.py", mlp(init + "\n")), select=["GL104"])
    assert codes(report) == ["GL104"]
    assert "did not touch it" in report.findings[0].message


def test_explicit_reset_parameters_is_the_default(write):
    init = "        for layer in self.layers:\n            layer.reset_parameters()\n"
    report = analyze_path(write("m.py", mlp(init + "\n")), select=["GL104"])
    assert codes(report) == ["GL104"]


def test_weights_alone_do_not_decide(write):
    # Source has init code that never ran while building (a method nobody calls): undecided.
    init = "    def init_weights(self):\n        for layer in self.layers:\n            nn.init.xavier_uniform_(layer.weight)\n"
    report = analyze_path(write("m.py", mlp("\n" + init)), select=["GL104"])
    assert codes(report) == []


def test_weights_look_default_statistics():
    import torch

    from gradlint.rules.default_init import weights_look_default

    torch.manual_seed(0)
    default = torch.nn.Linear(256, 128).weight
    assert weights_look_default(default)[0]
    he = torch.empty(128, 256)
    torch.nn.init.kaiming_normal_(he)
    assert not weights_look_default(he)[0]
    narrower = torch.empty(128, 256).uniform_(-0.5 / 16, 0.5 / 16)  # same shape of law, quarter variance
    assert not weights_look_default(narrower)[0]
    conv = torch.nn.Conv2d(16, 32, 3).weight
    assert weights_look_default(conv)[0]
