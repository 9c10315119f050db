"""The advisor's counterfactual estimates: graph edits, re-initialized statistics, what is proposed
(and what is not), and the ranking. The predictions are compared with the estimate of the model
actually changed in torch, so a counterfactual that drifts from what the codemod builds fails here."""

from __future__ import annotations

import math

import pytest

from gradlint.advise.advisor import rank_key
from gradlint.advise.edits import GraphEdit, apply_edit
from gradlint.ir import graph as g
from gradlint.ir.graph import LayerGraph
from gradlint.ir.verdict import Thresholds
from gradlint.rules.finding import Fix


def analyse(write, source: str, name: str = "model.py"):
    from gradlint.config import Config
    from gradlint.load.targets import parse_target
    from gradlint.pipeline.run import Session, analyze_file
    from gradlint.rules import select_rules

    path = write(name, source)
    return analyze_file(parse_target(str(path)), Session(Config(), select_rules(None, [], []))).reports


RELU_MLP = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, depth=20):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(128, 128) for _ in range(depth)])
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        for fc in self.fcs:
            x = torch.relu(fc(x))
        return self.head(x)


def example_inputs():
    return (torch.randn(64, 128),)
'''


# -- graph edits ------------------------------------------------------------------------------------

def _chain() -> LayerGraph:
    gr = LayerGraph()
    x = gr.add(g.INPUT, out_shape=(4, 8))
    a = gr.add(g.LINEAR, "linear", [x.id], module="a", out_shape=(4, 8))
    s = gr.add(g.ACTIVATION, "sigmoid", [a.id], out_shape=(4, 8))
    b = gr.add(g.LINEAR, "linear", [s.id], module="b", out_shape=(4, 8))
    gr.add(g.OUTPUT, inputs=[b.id])
    return gr


def test_edits_insert_nodes_and_repoint_consumers_without_touching_the_original():
    gr = _chain()
    edit = GraphEdit(ops={2: (g.ACTIVATION, "relu", {})}, norms_after={1: ("layer_norm", {"normalized_shape": (8,)})},
                     residuals=[(0, 2)])
    new = apply_edit(gr, edit)
    assert [n.op for n in gr] == ["", "linear", "sigmoid", "linear", ""]  # the original is left alone
    assert [(n.kind, n.op) for n in new] == [(g.INPUT, ""), (g.LINEAR, "linear"), (g.NORM, "layer_norm"),
                                             (g.ACTIVATION, "relu"), (g.ADD, "add"), (g.LINEAR, "linear"),
                                             (g.OUTPUT, "")]
    assert [n.id for n in new] == list(range(7))
    assert new[2].inputs == [1] and new[3].inputs == [2]  # the norm sits between the layer and its user
    assert new[4].inputs == [0, 3]  # x + block(x)
    assert new[5].inputs == [4] and new[6].inputs == [5]


def test_chained_residuals_read_the_stream():
    gr = _chain()
    new = apply_edit(gr, GraphEdit(residuals=[(0, 2), (2, 3)]))
    adds = [n for n in new if n.kind == g.ADD]
    b = next(n for n in new if n.module == "b")
    assert adds[0].inputs == [0, 2]
    assert adds[1].inputs == [adds[0].id, b.id]  # the second block reads the first one's sum
    assert b.inputs == [adds[0].id]


# -- ranking ----------------------------------------------------------------------------------------

def _fix(title, att, size, verdict=None):
    th = Thresholds()
    return Fix(title, "init", att, verdict or th.verdict(att), "safe", size=size)


def test_ranking_prefers_the_smallest_change_that_is_healthy_with_margin():
    th = Thresholds()
    fixes = [_fix("residual", 0.5, 5), _fix("init, barely", 2e-3, 1), _fix("swap", 0.2, 3), _fix("init", 0.05, 1),
             _fix("norm, still vanishing", 1e-5, 4), _fix("less vanishing", 1e-4, 4)]
    ranked = [f.title for f in sorted(fixes, key=lambda f: rank_key(f, th))]
    assert ranked == ["init", "swap", "residual", "init, barely", "less vanishing", "norm, still vanishing"]


def test_a_degenerate_fix_never_ranks_as_healthy_with_margin():
    th = Thresholds()
    ok, drift = _fix("He", 0.05, 1), _fix("tiny gain", 0.1, 1)
    assert rank_key(ok, th) < rank_key(drift, th, degenerate=True)


# -- the proposals, against the model actually changed ----------------------------------------------

def test_init_prediction_matches_the_reinitialized_model(write):
    """He on the hidden layers, unit gain on the head: what the codemod writes, rebuilt in torch."""
    (m,) = analyse(write, RELU_MLP)
    assert m.summary.verdict == "vanishing"
    he = next(f for f in m.fixes if f.title.startswith("He init"))
    assert he.applicability == "safe" and he.predicted_verdict == "healthy"
    fixed = RELU_MLP.replace(
        "        self.head = nn.Linear(128, 10)\n",
        "        self.head = nn.Linear(128, 10)\n"
        "        for name, m in self.named_modules():\n"
        "            if isinstance(m, nn.Linear):\n"
        "                if name == 'head':\n"
        "                    nn.init.normal_(m.weight, std=1 / 128 ** 0.5)\n"
        "                else:\n"
        "                    nn.init.kaiming_normal_(m.weight, nonlinearity='relu')\n"
        "                nn.init.zeros_(m.bias)\n")
    (after,) = analyse(write, fixed, "fixed.py")
    assert abs(math.log10(after.summary.estimated_attenuation / he.predicted_attenuation)) < 0.1


def test_swap_prediction_matches_the_swapped_model_and_gates_are_kept(write):
    source = '''
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, w=64):
        super().__init__()
        self.fc = nn.Linear(w, w)
        self.gate = nn.Linear(w, w)
        self.act = nn.Tanh()

    def forward(self, x):
        h = self.act(self.fc(x))
        return h * torch.sigmoid(self.gate(h))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(12)])
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.blocks(x))


def example_inputs():
    return (torch.randn(64, 64),)
'''
    (m,) = analyse(write, source)
    swap = next((f for f in m.fixes if f.kind == "activation"), None)
    assert swap is not None, [f.title for f in m.fixes]
    sites = swap.edit["changes"][0]["sites"]
    assert [s["from"] for s in sites] == ["tanh"], sites  # the sigmoid gate is not a hidden activation
    from gradlint.fix.apply import try_fix

    (path, text), = try_fix(swap, {}).items()
    assert "nn.ReLU()" in text and "torch.sigmoid(self.gate(h))" in text
    (after,) = analyse(write, text, "swapped.py")
    # the prediction uses the init law's expectation, the re-lint the weights drawn: 24 layers of sampling noise
    assert abs(math.log10(after.summary.estimated_attenuation / swap.predicted_attenuation)) < 0.15


def test_healthy_models_get_no_fixes_and_cost_nothing(write):
    from conftest import ROOT

    (m,) = analyse(write, (ROOT / "examples" / "resnet_small.py").read_text())
    assert m.summary.verdict == "healthy"
    assert m.fixes == [] and all(not f.fixes for f in m.findings)
    assert "advise" not in " ".join(m.notes)


def test_a_tiny_init_is_not_fixed_by_an_even_tinier_one(write):
    """With the output layer fixed, shrinking every hidden weight of a ReLU stack raises the
    first/last ratio while the activations vanish: such a gain is never proposed as healthy."""
    source = RELU_MLP.replace("        self.head = nn.Linear(128, 10)\n",
                              "        self.head = nn.Linear(128, 10)\n"
                              "        for m in self.modules():\n"
                              "            if isinstance(m, nn.Linear):\n"
                              "                nn.init.normal_(m.weight, std=0.01)\n")
    (m,) = analyse(write, source)
    assert m.summary.verdict == "vanishing" and m.fixes
    best = m.fixes[0]
    assert best.predicted_verdict == "healthy"
    assert "Caution" not in best.detail, best.detail
    for f in m.fixes:
        if f.title.startswith("scaled init"):
            gain = float(f.title.split("gain ")[1].split(")")[0])
            assert gain >= 0.5 or "Caution" in f.detail, f.title


def test_a_generator_without_batchnorm_is_advised_an_init_first(write):
    """The complaint the advisor answers: no 'add BatchNorm' to a design that left it out, when
    re-initializing is enough."""
    source = '''
import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, depth=12, ch=32):
        super().__init__()
        self.inp = nn.ConvTranspose2d(16, ch, 4)
        self.ups = nn.ModuleList([nn.ConvTranspose2d(ch, ch, 3, padding=1) for _ in range(depth)])
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z):
        x = torch.relu(self.inp(z))
        for up in self.ups:
            x = torch.relu(up(x))
        return torch.tanh(self.out(x))


def example_inputs():
    return (torch.randn(16, 16, 1, 1),)
'''
    (m,) = analyse(write, source)
    if m.summary.verdict != "vanishing":
        pytest.skip(f"the generator is {m.summary.verdict} here")
    assert m.fixes[0].kind == "init" and m.fixes[0].applicability == "safe", [f.title for f in m.fixes]
    norm = [i for i, f in enumerate(m.fixes) if f.kind == "normalization"]
    assert all(i > 0 for i in norm)
