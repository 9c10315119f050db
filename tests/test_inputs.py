"""Input inference: what a model declares about its inputs wins over a guess from its first
layer, a guessed image gets the side its first Linear wants, and a guess the model rejects is
guessed again."""

from __future__ import annotations

from helpers import analyze_path, codes

DECLARED_SIZE = """
import torch.nn as nn


class FixedSize(nn.Module):
    '''Like a timm ViT at 384: records its input size and refuses any other.'''
    pretrained_cfg = {"input_size": (3, 48, 48)}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 16, stride=16)
        self.head = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        assert x.shape[-2:] == (48, 48), f"Input height ({x.shape[-2]}) doesn't match model (48)"
        return self.head(self.conv(x).flatten(1))
"""


def test_a_declared_input_size_is_used(write):
    report = analyze_path(write("m.py", DECLARED_SIZE), select=["GL1"])
    m = report.models[0]
    assert m.status == "analyzed", [f.message for f in m.findings]
    assert m.input_source == "pretrained_cfg['input_size'] of the model"


CIFAR_NET = """
import torch
import torch.nn as nn


class CifarNet(nn.Module):
    '''Three-channel images, but the flatten size only fits 32x32 inputs.'''
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 8 * 8, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))
"""


def test_the_guessed_image_side_is_the_one_the_flatten_wants(write):
    report = analyze_path(write("m.py", CIFAR_NET), select=["GL1"])
    m = report.models[0]
    assert m.status == "analyzed", [f.message for f in m.findings]
    # 224 fails on the meta device before any capture; the first Linear's in_features give 32
    assert m.graph.inputs[0].out_shape == (8, 3, 32, 32) and "asks for" in m.input_source
    assert not any("rejected" in n for n in m.notes), m.notes


def test_a_rejected_guess_is_still_retried_with_other_sides(write):
    """Forward code the meta device cannot run (a check on values) defeats the probes; the
    capture's retry, on the CPU model, still finds the side."""
    src = CIFAR_NET.replace("return self.fc(x.flatten(1))",
                            "assert float(x.abs().sum()) >= 0\n        return self.fc(x.flatten(1))")
    report = analyze_path(write("m.py", src), select=["GL1"])
    m = report.models[0]
    assert m.status == "analyzed", [f.message for f in m.findings]
    assert m.graph.inputs[0].out_shape == (8, 3, 32, 32)


def test_verify_measures_on_the_image_size_the_analysis_settled_on(write):
    report = analyze_path(write("m.py", CIFAR_NET), select=["ALL"], verify=True)
    m = report.models[0]
    assert "GL001" not in codes(report), [f.message for f in m.findings]
    assert m.summary.measured_attenuation is not None and m.summary.measured_attenuation > 0


UNFIXABLE = """
import torch.nn as nn


class NeedsTwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x, mask):
        return self.conv(x) * mask
"""


def test_a_failure_on_guessed_inputs_names_the_input_and_the_fix(write):
    report = analyze_path(write("m.py", UNFIXABLE), select=["GL001"])
    m = report.models[0]
    assert m.status == "failed" and codes(report) == ["GL001"]
    f = m.findings[0]
    assert "on the inferred input float[8, 3, 224, 224]" in f.message
    assert "example_inputs()" in f.fix


def test_user_inputs_are_never_second_guessed(write):
    src = CIFAR_NET + """

def example_inputs():
    return (torch.randn(2, 3, 64, 64),)
"""
    report = analyze_path(write("m.py", src), select=["GL001"])
    m = report.models[0]
    assert m.status == "failed"
    assert "mat1 and mat2" in m.findings[0].message and "inferred" not in m.findings[0].message
