"""Property-based tests: random architectures assembled from the supported layers never crash the
pipeline, and the graph it captures has the structure the architecture was built with.

An ``Arch`` is a stem, a list of blocks (plain chains, residual blocks, two-branch concats,
sigmoid gates) made of weight layers each optionally followed by a norm and an activation, a
head, and an init scheme; ``source()`` writes it as the model file a user would have. Because
the architecture is known, its depth facts are known exactly (``expected_depths``), so the tests
compare against them rather than against gradlint's own output.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from helpers import analyze_path, codes  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ACTIVATIONS = {None: None, "relu": "nn.ReLU()", "gelu": "nn.GELU()", "silu": "nn.SiLU()", "tanh": "nn.Tanh()",
               "sigmoid": "nn.Sigmoid()", "leaky_relu": "nn.LeakyReLU(0.1)", "elu": "nn.ELU()"}
NORMS = {"mlp": {None: None, "layer": "nn.LayerNorm({w})", "batch": "nn.BatchNorm1d({w})"},
         "cnn": {None: None, "batch": "nn.BatchNorm2d({w})", "group": "nn.GroupNorm(4, {w})"}}
INITS = {
    "default": "",
    "kaiming": "nn.init.kaiming_normal_(m.weight, nonlinearity='relu')",
    "xavier": "nn.init.xavier_uniform_(m.weight)",
    "orthogonal": "nn.init.orthogonal_(m.weight)",
}


@dataclass(frozen=True)
class Layer:
    norm: str | None
    act: str | None


@dataclass(frozen=True)
class Block:
    kind: str  # plain | residual | concat | gate
    layers: tuple[Layer, ...]  # concat: the first branch; gate: unused
    other: tuple[Layer, ...] = ()  # concat: the second branch


@dataclass(frozen=True)
class Arch:
    family: str  # mlp | cnn
    width: int
    blocks: tuple[Block, ...]
    init: str

    def weight_modules(self) -> list[str]:
        """Qualified names of the weight layers, in construction (and forward) order."""
        names = ["stem"]
        for b, block in enumerate(self.blocks):
            if block.kind in ("plain", "residual"):
                names += [f"b{b}.{i}.0" for i in range(len(block.layers))]
            elif block.kind == "concat":
                names += [f"b{b}_a.{i}.0" for i in range(len(block.layers))]
                names += [f"b{b}_b.{i}.0" for i in range(len(block.other))]
                names.append(f"b{b}_merge")
            else:
                names.append(f"b{b}")
        return names + ["head"]

    def source(self) -> str:
        w = self.width
        weight = (lambda i, o: f"nn.Linear({i}, {o})") if self.family == "mlp" else (
            lambda i, o: f"nn.Conv2d({i}, {o}, 3, padding=1)")

        def chain(layers: tuple[Layer, ...]) -> str:
            parts = []
            for layer in layers:
                mods = [weight(w, w)]
                if layer.norm:
                    mods.append(NORMS[self.family][layer.norm].format(w=w))
                if layer.act:
                    mods.append(ACTIVATIONS[layer.act])
                parts.append(f"nn.Sequential({', '.join(mods)})")
            return f"nn.Sequential({', '.join(parts)})"

        stem = f"nn.Linear(12, {w})" if self.family == "mlp" else f"nn.Conv2d(3, {w}, 3, padding=1)"
        init_lines, fwd = [], []
        for b, block in enumerate(self.blocks):
            if block.kind == "plain":
                init_lines.append(f"self.b{b} = {chain(block.layers)}")
                fwd.append(f"x = self.b{b}(x)")
            elif block.kind == "residual":
                init_lines.append(f"self.b{b} = {chain(block.layers)}")
                fwd.append(f"x = x + self.b{b}(x)")
            elif block.kind == "concat":
                merge = f"nn.Linear({2 * w}, {w})" if self.family == "mlp" else f"nn.Conv2d({2 * w}, {w}, 1)"
                init_lines += [f"self.b{b}_a = {chain(block.layers)}", f"self.b{b}_b = {chain(block.other)}",
                               f"self.b{b}_merge = {merge}"]
                fwd.append(f"x = self.b{b}_merge(torch.cat([self.b{b}_a(x), self.b{b}_b(x)], dim=1))")
            else:
                init_lines.append(f"self.b{b} = {weight(w, w)}")
                fwd.append(f"x = x * torch.sigmoid(self.b{b}(x))")
        if self.family == "cnn":
            fwd.append("x = x.mean(dim=(2, 3))")
        init = INITS[self.init]
        if init:
            init_lines += ["for m in self.modules():",
                           "    if isinstance(m, (nn.Linear, nn.Conv2d)):",
                           f"        {init}"]
        example = "torch.randn(4, 12)" if self.family == "mlp" else "torch.randn(4, 3, 8, 8)"
        body = "\n        ".join(init_lines) or "pass"
        forward = "\n        ".join(fwd)
        return f"""import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = {stem}
        self.head = nn.Linear({w}, 5)
        {body}

    def forward(self, x):
        x = self.stem(x)
        {forward}
        return self.head(x)


def example_inputs():
    return ({example},)
"""


def expected_depths(arch: Arch) -> tuple[int, int]:
    """(longest, shortest) weight layers from input to output, from the architecture itself."""
    longest = shortest = 1  # the stem
    for block in arch.blocks:
        n = len(block.layers)
        if block.kind == "plain":
            longest, shortest = longest + n, shortest + n
        elif block.kind == "residual":
            longest += n  # the skip adds a path that crosses nothing
        elif block.kind == "concat":
            m = len(block.other)
            longest, shortest = longest + max(n, m) + 1, shortest + min(n, m) + 1
        else:  # gate: x * sigmoid(W x), the gate's layer is a side path
            longest += 1
    return longest + 1, shortest + 1  # the head


# -- strategies ------------------------------------------------------------------------------------

def layers_st(family: str, min_size: int = 1, max_size: int = 3):
    layer = st.builds(Layer, st.sampled_from(sorted(NORMS[family], key=str)), st.sampled_from(sorted(ACTIVATIONS, key=str)))
    return st.lists(layer, min_size=min_size, max_size=max_size).map(tuple)


@st.composite
def archs(draw, kinds=("plain", "residual", "concat", "gate"), max_blocks: int = 5):
    family = draw(st.sampled_from(["mlp", "cnn"]))
    blocks = []
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(kinds))
        other = draw(layers_st(family)) if kind == "concat" else ()
        blocks.append(Block(kind, draw(layers_st(family)), other))
    return Arch(family, draw(st.sampled_from([8, 16])), tuple(blocks), draw(st.sampled_from(sorted(INITS))))


# Set by the module fixture; no default, so a stray call cannot write into the working directory.
_FOLDER: Path | None = None
_names = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _folder(tmp_path_factory):
    global _FOLDER
    _FOLDER = tmp_path_factory.mktemp("archs")


def analyze(arch: Arch, select: list[str] | None = None, **overrides):
    # A fresh file name per example: a rewritten file of the same size could reuse stale bytecode.
    path = _FOLDER / f"arch_{next(_names)}.py"
    path.write_text(arch.source(), encoding="utf-8")
    report = analyze_path(path, select=select if select is not None else ["ALL"], **overrides)
    assert len(report.models) == 1
    return report, report.models[0]


SETTINGS = settings(max_examples=int(__import__("os").environ.get("GRADLINT_HYPOTHESIS_EXAMPLES", 25)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- properties --------------------------------------------------------------------------------------

@SETTINGS
@given(archs())
def test_any_assembled_architecture_is_analysed(arch):
    report, m = analyze(arch)
    assert m.status == "analyzed", [f.message for f in m.findings]
    assert "GL001" not in codes(report)
    assert [layer.module for layer in m.layers] == arch.weight_modules()
    assert all(layer.location is not None and layer.location.path.endswith(".py") for layer in m.layers)


@SETTINGS
@given(archs())
def test_depth_and_shortest_depth_match_the_architecture(arch):
    _, m = analyze(arch, select=[])
    assert (m.depth, m.shortest_depth) == expected_depths(arch)


@SETTINGS
@given(archs(kinds=("plain",)))
def test_a_plain_chain_is_as_deep_as_its_weight_layers(arch):
    _, m = analyze(arch, select=[])
    assert m.depth == m.shortest_depth == len(m.layers) == len(arch.weight_modules())


@SETTINGS
@given(archs(), st.data())
def test_adding_a_residual_connection_never_lengthens_the_shortest_path(arch, data):
    plain = [i for i, b in enumerate(arch.blocks) if b.kind == "plain"]
    if not plain:
        arch = replace(arch, blocks=arch.blocks + (Block("plain", (Layer(None, "relu"),)),))
        plain = [len(arch.blocks) - 1]
    i = data.draw(st.sampled_from(plain))
    residual = replace(arch, blocks=tuple(replace(b, kind="residual") if j == i else b for j, b in enumerate(arch.blocks)))
    _, before = analyze(arch, select=[])
    _, after = analyze(residual, select=[])
    assert after.shortest_depth <= before.shortest_depth
    assert after.depth == before.depth


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(archs(max_blocks=3))
def test_every_capture_method_gives_the_same_structure(arch):
    # Rules never see how the graph was captured: fx, export and hooks must agree.
    from gradlint.capture import capture, inputs
    from gradlint.ir.structure import Structure
    from gradlint.load.build import build_model
    from gradlint.load.discover import load_file
    from gradlint.load.targets import parse_target

    path = _FOLDER / f"arch_{next(_names)}.py"
    path.write_text(arch.source(), encoding="utf-8")
    loaded = load_file(parse_target(str(path)))
    built = build_model(loaded.candidates[0], materialize_limit=10**9)
    example = inputs.from_function(loaded.example_inputs, "meta")
    seen = {}
    for method in ("fx", "export", "hooks"):
        g = capture(built, example, methods=(method,))
        s = Structure(g)
        seen[method] = ([n.module for n in g.weight_layers()], s.depth, s.shortest_depth,
                        sorted(n.op for n in g if n.kind in ("activation", "norm")))
    assert seen["fx"] == seen["export"] == seen["hooks"]


@SETTINGS
@given(archs())
def test_no_saturating_activation_no_saturating_chain(arch):
    saturating = {"tanh", "sigmoid"}
    if any(layer.act in saturating for b in arch.blocks for layer in b.layers + b.other):
        arch = replace(arch, blocks=tuple(
            replace(b, layers=tuple(replace(x, act="relu") if x.act in saturating else x for x in b.layers),
                    other=tuple(replace(x, act="relu") if x.act in saturating else x for x in b.other))
            for b in arch.blocks if b.kind != "gate") or (Block("plain", (Layer(None, "relu"),)),))
    report, _ = analyze(arch, select=["GL101"])
    assert codes(report) == []


@SETTINGS
@given(archs())
def test_normalizing_every_layer_never_adds_a_missing_normalization_finding(arch):
    norm = "layer" if arch.family == "mlp" else "batch"
    normed = replace(arch, blocks=tuple(
        replace(b, layers=tuple(replace(x, norm=norm) for x in b.layers),
                other=tuple(replace(x, norm=norm) for x in b.other)) for b in arch.blocks))
    before, _ = analyze(arch, select=["GL102"])
    after, _ = analyze(normed, select=["GL102"])
    assert len(codes(after)) <= len(codes(before))


# -- estimator-dependent properties --------------------------------------------------------------
# They read only the JSON contract's numbers: summary.estimated_attenuation and layers[*].estimate.


def _attenuation(arch: Arch) -> float:
    # On the meta device the estimate comes from the init formulas, not from one random draw of
    # weights: two architectures are compared, not two samples (width 8 draws differ by ~10%).
    _, m = analyze(arch, select=[], materialize_limit=0)
    value = m.summary.estimated_attenuation
    assert value is not None and math.isfinite(value), m.summary
    return value


@SETTINGS
@given(archs())
def test_estimates_are_finite(arch):
    _, m = analyze(arch, select=[])
    for layer in m.layers:
        assert layer.estimate is not None
        assert all(math.isfinite(v) for v in layer.estimate.values() if isinstance(v, float)), layer


@SETTINGS
@given(archs(kinds=("plain",)))
def test_adding_a_sigmoid_layer_to_a_plain_chain_never_raises_the_attenuation(arch):
    longer = replace(arch, blocks=arch.blocks + (Block("plain", (Layer(None, "sigmoid"),)),))
    assert _attenuation(longer) <= _attenuation(arch) * (1 + 1e-6)


def _block_gain(arch: Arch, b: int) -> float:
    """delta at the block's input over delta at its output (the residual add, when there is one),
    from the estimate's node-by-node flow of the error signal."""
    _, m = analyze(arch, select=[], materialize_limit=0)
    flow = m.estimate.flow
    first = next(f for f in flow if f.label == f"b{b}.0.0")
    x = first.inputs[0]
    inside = [f for f in flow if f.label.startswith(f"b{b}.")]
    out = inside[-1].id
    add = next((f for f in flow if f.kind == "add" and x in f.inputs and out in f.inputs), None)
    out = add.id if add is not None else out
    by_id = {f.id: f for f in flow}
    assert by_id[x].delta and by_id[out].delta
    return by_id[x].delta / by_id[out].delta


@SETTINGS
@given(archs(kinds=("plain",)), st.data())
def test_adding_a_skip_connection_around_a_block_never_lowers_its_gain(arch, data):
    # The issue words it as "never lowers the attenuation". That is not a law of the measured
    # numbers: grad_ratio is relative to the last layer, whose input a skip enlarges, and a skip
    # also raises the variance every later LayerNorm divides by. Measured, stem -> [Linear,
    # BatchNorm] -> head at width 8, median of 200 seeds: 0.791 plain, 0.780 residual. What a skip
    # can never do is lower the block's own backward gain: sqrt(1 + chi) against sqrt(chi). The
    # estimator's chi of a BatchNorm branch depends a little on the structure of the gradient that
    # arrives from downstream (the per-channel constant part BatchNorm removes), which the skip
    # changes: hypothesis found dips of up to 3% (a conv+BN block in a CNN), hence the 5% margin.
    i = data.draw(st.integers(0, len(arch.blocks) - 1))
    residual = replace(arch, blocks=tuple(replace(b, kind="residual") if j == i else b for j, b in enumerate(arch.blocks)))
    gain_plain, gain_residual = _block_gain(arch, i), _block_gain(residual, i)
    assert gain_residual >= gain_plain * 0.95
    assert gain_residual >= 1 - 1e-6
