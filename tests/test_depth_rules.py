"""The depth rules (GL101-GL104) stay quiet on healthy architectures and fire on the textbook
bad ones — the false alarms users judge a linter by."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import analyze_path, codes

ROOT = Path(__file__).resolve().parent.parent
DEPTH_RULES = ["GL101", "GL102", "GL103", "GL104"]

BN_RELU_CNN = """
import torch.nn as nn


class BNReLUCNN(nn.Module):
    def __init__(self, depth=14, c=16):
        super().__init__()
        layers = [nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))
"""

SHALLOW_SIGMOID = """
import torch.nn as nn


class ThreeLayerSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.Sigmoid(), nn.Linear(64, 64), nn.Sigmoid(),
                                 nn.Linear(64, 2), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)
"""

POST_LN_ENCODER = """
import torch
import torch.nn as nn


class PostLN(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 24, enable_nested_tensor=False)

    def forward(self, x):
        return self.enc(x)


def example_inputs():
    return (torch.randn(4, 10, 64),)
"""


@pytest.mark.parametrize("path", ["examples/resnet_small.py", "examples/transformer_encoder.py"])
def test_healthy_examples_are_clean(path):
    report = analyze_path(ROOT / path, select=DEPTH_RULES)
    assert report.models and all(m.status == "analyzed" for m in report.models)
    assert codes(report) == []


@pytest.mark.parametrize("source", [BN_RELU_CNN, SHALLOW_SIGMOID, POST_LN_ENCODER], ids=["bn-relu-cnn", "3-layer-sigmoid", "post-ln-encoder"])
def test_healthy_models_are_clean(write, source):
    report = analyze_path(write("model.py", source), select=DEPTH_RULES)
    assert report.models and report.models[0].status == "analyzed"
    assert codes(report) == []


def test_deep_sigmoid_mlp_fires_every_depth_rule():
    report = analyze_path(ROOT / "examples/deep_sigmoid_mlp.py", select=DEPTH_RULES)
    assert sorted(codes(report)) == DEPTH_RULES
    by_code = {f.code: f for f in report.findings}
    # GL101 points at `self.act = nn.Sigmoid()`, the others at `self.fc = nn.Linear(...)` in the block.
    assert (by_code["GL101"].location.line, by_code["GL101"].location.column) == (14, 20)
    for code in ("GL102", "GL103", "GL104"):
        assert (by_code[code].location.line, by_code[code].location.column) == (13, 19)
    assert "19 saturating activations" in by_code["GL101"].message


def test_resnet_depth_counts_the_longest_path_but_skip_is_short():
    report = analyze_path(ROOT / "examples/resnet_small.py", select=DEPTH_RULES)
    m = report.models[0]
    assert m.depth >= 33  # stem + 32 convs + fc on the residual branches
    assert m.shortest_depth <= 6  # stem, the projection shortcuts, fc


def test_thresholds_come_from_rule_options(write):
    from gradlint.config import Config

    path = ROOT / "examples/deep_sigmoid_mlp.py"
    cfg = Config(rules={"GL101": {"min-chain": 25}, "no-skip-connections": {"min-depth": 21}})
    report = analyze_path(path, select=DEPTH_RULES, config=cfg)
    assert sorted(codes(report)) == ["GL102", "GL104"]


SE_GATED_MLP = """
import torch.nn as nn


class SqueezeExcite(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d // 4)
        self.fc2 = nn.Linear(d // 4, d)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.fc1(x).relu()))


class GatedStack(nn.Module):
    def __init__(self, depth=7, d=32):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(d, d) for _ in range(depth)])
        self.se = nn.ModuleList([SqueezeExcite(d) for _ in range(depth)])

    def forward(self, x):
        for layer, se in zip(self.layers, self.se):
            x = se(layer(x).relu())
        return x
"""


def test_squeeze_excitation_gates_do_not_lengthen_a_run(write):
    # 7 layers in a row, each gated by an SE block: the signal goes on through x, not through the
    # gates' two layers, so the longest run is 9 (the 7, then the last gate's two; GL102 wants
    # 10), not 21 (the false alarm on timm's RepViT).
    report = analyze_path(write("model.py", SE_GATED_MLP), select=["GL102"])
    assert report.models[0].status == "analyzed"
    assert codes(report) == []


WS_CONV_STACK = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class WSConv2d(nn.Conv2d):
    '''Weight standardization (Qiao et al. 2019), as in NFNets and BiT.'''
    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class Stack(nn.Module):
    def __init__(self, depth=12, c=8):
        super().__init__()
        self.convs = nn.ModuleList([CONV(3 if i == 0 else c, c, 3, padding=1) for i in range(depth)])

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(x))
        return x


def example_inputs():
    return (torch.randn(2, 3, 16, 16),)
"""


@pytest.mark.parametrize("conv, expected", [("WSConv2d", []), ("nn.Conv2d", ["GL102"])])
def test_weight_standardized_convolutions_count_as_normalized(write, conv, expected):
    report = analyze_path(write("model.py", WS_CONV_STACK.replace("CONV(", f"{conv}(")), select=["GL102"])
    assert report.models[0].status == "analyzed"
    assert codes(report) == expected


CPE_PRE_NORM = """
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d=32):
        super().__init__()
        self.cpe = nn.Conv1d(d, d, 3, padding=1, groups=d)  # a convolutional position encoding
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x):
        x = x + BRANCH
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


class Encoder(nn.Module):
    def __init__(self, depth=12):
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)


def example_inputs():
    return (torch.randn(2, 10, 32),)
"""


@pytest.mark.parametrize("branch, expected", [
    ("self.cpe(x.transpose(1, 2)).transpose(1, 2)", []),
    ("torch.relu(self.cpe(x.transpose(1, 2))).transpose(1, 2)", ["GL102"]),
], ids=["linear-branch", "nonlinear-branch"])
def test_linear_residual_branches_do_not_lengthen_a_run(write, branch, expected):
    # CoaT/DaViT: 12 pre-norm blocks, each with x + conv(x) on the stream. I + W has gain >= 1
    # and near 1: not the drift GL102 is about. With a ReLU in the branch it is a residual
    # block like any other, and 12 of them unnormalized still fire.
    report = analyze_path(write("model.py", CPE_PRE_NORM.replace("BRANCH", branch)), select=["GL102"])
    assert report.models[0].status == "analyzed"
    assert codes(report) == expected


INVERTED_RESIDUAL = """
import torch
import torch.nn as nn


def conv(cin, cout, k=1, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)]
    norm = NORM
    layers += [norm(cout)] if norm else []
    layers += [nn.ReLU6()] if act else []
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t=4):
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(conv(cin, cin * t), conv(cin * t, cin * t, 3, stride, cin * t),
                                  conv(cin * t, cout, act=False))

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetLike(nn.Module):
    '''MobileNetV2's layout: each stage opens with a non-residual transition block.'''
    def __init__(self, widths=(12, 16, 24, 32, 48, 64, 96)):
        super().__init__()
        blocks, cin = [conv(3, 8, 3, 2)], 8
        for i, w in enumerate(widths):
            blocks += [InvertedResidual(cin, w, 2 if i % 2 else 1), InvertedResidual(w, w, 1)]
            cin = w
        # A mobile head: a bare 1x1 conv right before the classifier (MobileNetV3, LCNet).
        self.features = nn.Sequential(*blocks, nn.Conv2d(cin, 128, 1), nn.Hardswish())
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def example_inputs():
    return (torch.randn(2, 3, 32, 32),)
"""


@pytest.mark.parametrize("norm, expected", [("nn.BatchNorm2d", []), ("None", ["GL103"])])
def test_normalized_transitions_of_inverted_residual_nets_are_not_plain_depth(write, norm, expected):
    # 7 transition blocks of 3 convs leave 24 layers on every path, as in MobileNetV2/EfficientNet,
    # which train well with BatchNorm; without it the shorter threshold applies.
    report = analyze_path(write("model.py", INVERTED_RESIDUAL.replace("NORM", norm)), select=["GL103"])
    m = report.models[0]
    assert m.status == "analyzed" and m.shortest_depth == 24
    assert codes(report) == expected
