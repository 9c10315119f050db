"""Capture on the code people write: fx when it can, export and hooks when it cannot, always on
the meta device first, and one IR whatever captured it."""

from __future__ import annotations

import resource

import pytest
from helpers import analyze_path, codes

from gradlint.ir.graph import ACTIVATION, ADD, LINEAR

DATA_DEPENDENT = """
import torch
import torch.nn as nn


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x):
        if x.sum() > 0:          # data-dependent: neither fx nor export on meta can follow it
            return self.b(torch.relu(self.a(x)))
        return self.b(x)


def example_inputs():
    return (torch.ones(4, 8),)
"""


def graph_of(report, i=0):
    return report.models[i].graph


def test_data_dependent_control_flow_falls_back_to_hooks(write):
    report = analyze_path(write("m.py", DATA_DEPENDENT), select=["GL1"])
    m = report.models[0]
    assert m.status == "analyzed" and m.capture == "hooks"
    assert [layer.module for layer in m.layers] == ["a", "b"]  # the branch the inputs took
    assert any("fx failed" in n for n in m.notes)


def test_functional_ops_point_at_the_forward_line(write):
    src = """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 4)
            self.fc2 = nn.Linear(4, 4)

        def forward(self, x):
            h = torch.tanh(self.fc1(x))
            return F.relu(self.fc2(h)) + h.sigmoid()
    """
    report = analyze_path(write("m.py", src), select=["GL1"])
    g = graph_of(report)
    acts = {n.op: n.location for n in g if n.kind == ACTIVATION}
    assert (acts["tanh"].line, acts["tanh"].column) == (13, 13)
    assert (acts["relu"].line, acts["relu"].column) == (14, 16)
    assert acts["sigmoid"].line == 14
    assert [n for n in g if n.kind == ADD][0].location.line == 14


def test_dict_outputs_kwargs_only_and_multiple_inputs(write):
    src = """
    import torch
    import torch.nn as nn


    class TwoTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.left = nn.Linear(6, 8)
            self.right = nn.Linear(10, 8)
            self.head = nn.Linear(16, 2)

        def forward(self, a, *, b, scale: float = 1.0):
            z = torch.cat([self.left(a), self.right(b)], dim=-1) * scale
            return {"logits": self.head(z), "features": z}


    def example_inputs():
        return ((torch.randn(3, 6),), {"b": torch.randn(3, 10)})
    """
    report = analyze_path(write("m.py", src), select=["GL1"])
    m = report.models[0]
    assert m.status == "analyzed", m.findings
    assert [layer.module for layer in m.layers] == ["left", "right", "head"]


def test_tied_weights_count_once(write):
    src = """
    import torch
    import torch.nn as nn


    class TiedLM(nn.Module):
        def __init__(self, vocab=50, d=16):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.mix = nn.Linear(d, d)
            self.out = nn.Linear(d, vocab, bias=False)
            self.out.weight = self.embed.weight

        def forward(self, ids):
            return self.out(torch.relu(self.mix(self.embed(ids))))
    """
    report = analyze_path(write("m.py", src), select=["GL1"])
    assert [layer.module for layer in report.models[0].layers] == ["embed", "mix"]


def test_modulelist_loop_and_shape_specific_model(write):
    src = """
    import torch
    import torch.nn as nn


    class Patches(nn.Module):
        '''Only runs on 28x28 images: the flatten size is fixed.'''
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fcs = nn.ModuleList([nn.Linear(4 * 26 * 26, 32)] + [nn.Linear(32, 32) for _ in range(3)])

        def forward(self, x):
            x = self.conv(x).flatten(1)
            for fc in self.fcs:
                x = torch.relu(fc(x))
            return x


    def example_inputs():
        return (torch.randn(2, 1, 28, 28),)
    """
    report = analyze_path(write("m.py", src), select=["GL1"])
    m = report.models[0]
    assert m.status == "analyzed" and m.capture == "fx"
    assert len(m.layers) == 5


def test_a_1000_layer_model_is_analysed_without_allocating_its_weights(write):
    # 1000 layers of 4096x4096: 16.8 billion parameters, 67 GB in float32.
    src = """
    import torch.nn as nn


    class Huge(nn.Module):
        def __init__(self, depth=1000, width=4096):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
            self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(depth)])

        def forward(self, x):
            for layer, norm in zip(self.layers, self.norms):
                x = x + layer(norm(x)).relu()
            return x
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = analyze_path(write("huge.py", src), select=["GL1"])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    m = report.models[0]
    assert m.status == "analyzed" and m.materialized is False
    assert m.parameters > 16_000_000_000
    assert len(m.layers) == 1000
    assert grown_mb < 1500, f"peak RSS grew by {grown_mb:.0f} MB"
    assert codes(report) == []  # pre-norm residual: healthy


@pytest.fixture(scope="module")
def transformers_mod():
    return pytest.importorskip("transformers")


HF_MODELS = {
    "bert": """
        from transformers import BertConfig, BertModel
        def build():
            return BertModel(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=128, vocab_size=100))
    """,
    "gpt2": """
        from transformers import GPT2Config, GPT2LMHeadModel
        def build():
            return GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100,
                                              bos_token_id=0, eos_token_id=0))
    """,
    "llama": """
        from transformers import LlamaConfig, LlamaForCausalLM
        def build():
            return LlamaForCausalLM(LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                num_key_value_heads=2, intermediate_size=128, vocab_size=100))
    """,
}


@pytest.mark.parametrize("name", sorted(HF_MODELS))
def test_hugging_face_models_from_config(transformers_mod, write, name):
    path = write(f"hf_{name}.py", HF_MODELS[name])
    report = analyze_path(f"{path}::build", select=["ALL"])
    m = report.models[0]
    assert m.status == "analyzed", [f.message for f in m.findings]
    assert m.capture in ("fx", "export", "hooks")
    g = graph_of(report)
    assert sum(n.kind == LINEAR for n in g) >= 8  # q, k, v, o, mlp x 2 layers
    assert m.layers[0].type == "Embedding"
    assert all(layer.location is not None for layer in m.layers)
    assert "GL101" not in codes(report)  # GPT-2's tanh-approximated GELU is a GELU, not a tanh chain


def test_a_model_built_entirely_by_a_library_never_points_at_the_caller(write, monkeypatch):
    # The root model comes from an installed library (timm, torchvision): no frame of its forward
    # is user code. Locations fall back to the user's line that built it, never to the code that
    # called gradlint (here this test, in-process).
    from gradlint.ir import source

    lib = write("vendor/blocks.py", """
    import torch
    import torch.nn as nn


    class LibraryNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8)

        def forward(self, x):
            return self.b(torch.relu(self.a(x))) + x
    """)
    path = write("m.py", """
    from vendor.blocks import LibraryNet


    def build():
        return LibraryNet()
    """)
    roots = source._library_roots() + (str(lib.parent.resolve()),)
    monkeypatch.setattr(source, "_library_roots", lambda: roots)
    source.is_library_file.cache_clear()
    try:
        report = analyze_path(f"{path}::build", select=["GL1"])
    finally:
        source.is_library_file.cache_clear()
    assert report.models[0].capture == "fx"
    functional = [n for n in graph_of(report) if n.op in ("relu", "add")]
    assert len(functional) == 2
    assert all(n.location is not None and n.location.path.endswith("m.py") for n in functional), \
        [n.location for n in functional]


def test_reshape_as_reads_only_the_shape_of_its_argument(write):
    # timm's LeViT: ``self.bn(x.flatten(0, 1)).reshape_as(x)``. The second tensor gives a shape;
    # treating it as data made an edge around every BatchNorm (and GL102 fired on LeViT).
    src = """
    import torch.nn as nn


    class LinearNorm(nn.Module):
        def __init__(self, d=16):
            super().__init__()
            self.linear = nn.Linear(d, d, bias=False)
            self.bn = nn.BatchNorm1d(d)

        def forward(self, x):
            x = self.linear(x)
            return self.bn(x.flatten(0, 1)).reshape_as(x)


    class Stack(nn.Module):
        def __init__(self, depth=12):
            super().__init__()
            self.blocks = nn.Sequential(*[nn.Sequential(LinearNorm(), nn.Hardswish()) for _ in range(depth)])

        def forward(self, x):
            return self.blocks(x)


    def example_inputs():
        import torch
        return (torch.randn(2, 5, 16),)
    """
    report = analyze_path(write("m.py", src), select=["GL102"])
    g = graph_of(report)
    reshapes = [n for n in g if n.op == "reshape_as"]
    assert not reshapes or all(len(n.inputs) == 1 for n in reshapes)
    assert codes(report) == []


def test_modules_returning_tuples_stay_on_the_path(write):
    # LSTM and MultiheadAttention return tuples; their first item is the differentiable output.
    src = """
    import torch.nn as nn


    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.mha = nn.MultiheadAttention(16, 2, batch_first=True)
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            h, _ = self.lstm(x)
            a, _ = self.mha(h, h, h)
            return self.fc(a)
    """
    report = analyze_path(write("m.py", src), select=["GL1"])
    m = report.models[0]
    assert m.capture == "fx" and m.depth == 3 and m.shortest_depth == 3
