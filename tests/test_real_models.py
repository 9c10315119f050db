"""Real architectures in CI (no torchvision or timm here): Hugging Face models from tiny configs
and hand-written models with the patterns fx cannot trace. Each must be analysed (no GL001), give
a sensible graph, and stay quiet under the depth rules: they are healthy designs.

The zoo (benchmarks/zoo.py) runs the full libraries; these are the patterns it taught us.
"""

from __future__ import annotations

import pytest
from helpers import analyze_path, codes

from gradlint.ir.graph import EMBEDDING, NORM

DEPTH_RULES = ["GL101", "GL102", "GL103", "GL104"]


def analyzed(report):
    m = report.models[0]
    assert m.status == "analyzed", [f.message for f in m.findings]
    return m


def graph_of(m):
    return m.graph


# -- Hugging Face, built from configs -----------------------------------------------------------

HF = {
    "t5": """
        from transformers import T5Config, T5ForConditionalGeneration
        def build():
            return T5ForConditionalGeneration(T5Config(d_model=32, d_ff=64, d_kv=8, num_layers=2,
                                                       num_decoder_layers=2, num_heads=4, vocab_size=100))
    """,
    "bart": """
        from transformers import BartConfig, BartForConditionalGeneration
        def build():
            return BartForConditionalGeneration(BartConfig(
                d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100,
                max_position_embeddings=64))
    """,
    "vit": """
        from transformers import ViTConfig, ViTForImageClassification
        def build():
            # image_size=32: only 32x32 images are accepted; the config says so, not the first layer.
            return ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                       intermediate_size=64, image_size=32, patch_size=8))
    """,
    "distilbert": """
        from transformers import DistilBertConfig, DistilBertModel
        def build():
            return DistilBertModel(DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, vocab_size=100))
    """,
}


@pytest.fixture(scope="module")
def transformers_mod():
    return pytest.importorskip("transformers")


@pytest.mark.parametrize("name", sorted(HF))
def test_hugging_face_configs_are_analysed_without_false_alarms(transformers_mod, write, name):
    report = analyze_path(f"{write(f'hf_{name}.py', HF[name])}::build", select=["GL0", *DEPTH_RULES])
    m = analyzed(report)
    assert m.input_source.startswith("the Hugging Face config")
    assert codes(report) == []
    assert len(m.layers) >= 8


def test_encoder_decoder_sees_both_stacks_and_ties_the_shared_embedding(transformers_mod, write):
    report = analyze_path(f"{write('hf_t5.py', HF['t5'])}::build", select=["GL0"])
    m = analyzed(report)
    names = [layer.module for layer in m.layers]
    assert any(n.startswith("encoder.block.1.") for n in names)
    assert any(n.startswith("decoder.block.1.layer.1.EncDecAttention") for n in names)  # cross-attention
    # One embedding matrix shared by encoder, decoder and lm_head: listed once, at its first use.
    assert [layer.type for layer in m.layers].count("Embedding") == 1
    assert "lm_head" not in names
    # The decoder reads the encoder: some path from the input ids crosses both stacks.
    assert m.depth > max(sum(n.startswith(p) for n in names) for p in ("encoder.", "decoder.")) // 2


def test_multimodal_model_with_dict_inputs_and_model_output(transformers_mod, write):
    src = """
        import torch
        from transformers import CLIPConfig, CLIPModel

        def build():
            text = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        vocab_size=100, max_position_embeddings=32)
            vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          image_size=32, patch_size=8)
            return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))

        def example_inputs():
            return {"input_ids": torch.randint(0, 100, (2, 8)), "pixel_values": torch.randn(2, 3, 32, 32)}
    """
    report = analyze_path(f"{write('clip.py', src)}::build", select=["GL0", *DEPTH_RULES])
    m = analyzed(report)
    names = [layer.module for layer in m.layers]
    assert any(n.startswith("text_model.") for n in names) and any(n.startswith("vision_model.") for n in names)
    assert {"text_projection", "visual_projection"} <= set(names)
    assert codes(report) == []


# -- hand-written patterns ----------------------------------------------------------------------

def test_loop_over_the_sequence_length_with_a_shared_cell(write):
    # range(x.shape[1]) defeats fx; the cell's weights are used at every step and listed once.
    src = """
    import torch
    import torch.nn as nn


    class UnrolledRNN(nn.Module):
        def __init__(self, d_in=8, d=16):
            super().__init__()
            self.ih = nn.Linear(d_in, d)
            self.hh = nn.Linear(d, d)
            self.out = nn.Linear(d, 3)

        def forward(self, x):
            h = x.new_zeros(x.shape[0], self.hh.in_features)
            for t in range(x.shape[1]):
                h = torch.tanh(self.ih(x[:, t]) + self.hh(h))
            return self.out(h)


    def example_inputs():
        return (torch.randn(4, 12, 8),)
    """
    report = analyze_path(write("m.py", src), select=["GL0"])
    m = analyzed(report)
    assert m.capture != "fx"
    assert [layer.module for layer in m.layers] == ["ih", "hh", "out"]
    assert sum(n.module == "hh" for n in graph_of(m)) == 12  # one node per call, one weight layer


def test_tuple_and_dataclass_outputs_and_optional_mask(write):
    src = """
    from dataclasses import dataclass
    from typing import Optional

    import torch
    import torch.nn as nn


    @dataclass
    class Output:
        logits: torch.Tensor
        features: torch.Tensor
        aux: Optional[torch.Tensor] = None


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(10, 16)
            self.head = nn.Linear(16, 4)
            self.aux_head = nn.Linear(16, 2)

        def forward(self, x, mask=None, *, return_aux: bool = True):
            h = torch.relu(self.body(x))
            if mask is not None:
                h = h * mask
            out = Output(self.head(h), h)
            if return_aux:
                out.aux = self.aux_head(h)
            return out
    """
    report = analyze_path(write("m.py", src), select=["GL0"])
    m = analyzed(report)
    assert [layer.module for layer in m.layers] == ["body", "head", "aux_head"]
    g = graph_of(m)
    out = g.outputs[0]
    assert {g[i].module for i in out.inputs} >= {"head", "aux_head"}  # every output reaches the loss

    # The same through each capture method on its own.
    from gradlint.capture import capture, inputs
    from gradlint.load.build import build_model
    from gradlint.load.discover import load_file
    from gradlint.load.targets import parse_target

    loaded = load_file(parse_target(str(write("m.py", src))))
    built = build_model(loaded.candidates[0], materialize_limit=10**9)
    for method in ("fx", "export", "hooks"):
        g = capture(built, inputs.infer(built.meta_model, "meta"), methods=(method,))
        assert {g[i].module for i in g.outputs[0].inputs} >= {"head", "aux_head"}, method


HYBRID = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    '''timm's channels-first LayerNorm: permutes around F.layer_norm.'''
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    def __init__(self, p=0.1):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.fc2(F.relu(self.fc1(s))).sigmoid()


class ConvBlock(nn.Module):
    '''ConvNeXt block with LayerScale and squeeze-excitation.'''
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = LayerNorm2d(c)
        self.pw1 = nn.Conv2d(c, 4 * c, 1)
        self.pw2 = nn.Conv2d(4 * c, c, 1)
        self.se = SqueezeExcite(c)
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-6))
        self.drop_path = DropPath()

    def forward(self, x):
        y = self.pw2(F.gelu(self.pw1(self.norm(self.dw(x)))))
        return x + self.drop_path(self.gamma * self.se(y))


class Attention(nn.Module):
    def __init__(self, d, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class TransformerBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.cpe = nn.Conv2d(d, d, 3, padding=1, groups=d)  # convolutional position encoding
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.ls1 = nn.Parameter(torch.full((d,), 1e-5))
        self.ls2 = nn.Parameter(torch.full((d,), 1e-5))

    def forward(self, x):
        x = x + self.cpe(x)
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.ls1 * self.attn(self.norm1(t))
        t = t + self.ls2 * self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(B, C, H, W)


class Hybrid(nn.Module):
    '''A CoAtNet/MaxViT-style hybrid: conv stem, ConvNeXt stages, then attention stages.'''
    def __init__(self, dims=(16, 32), depths=(3, 4), classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        self.stage1 = nn.Sequential(*[ConvBlock(dims[0]) for _ in range(depths[0])])
        self.down = nn.Sequential(LayerNorm2d(dims[0]), nn.Conv2d(dims[0], dims[1], 2, stride=2))
        self.stage2 = nn.Sequential(*[TransformerBlock(dims[1]) for _ in range(depths[1])])
        self.norm = nn.LayerNorm(dims[1])
        self.head = nn.Linear(dims[1], classes)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.head(self.norm(x.mean((2, 3))))


def example_inputs():
    return (torch.randn(2, 3, 32, 32),)
"""


def test_hand_written_timm_style_hybrid(write):
    report = analyze_path(write("hybrid.py", HYBRID), select=["GL0", *DEPTH_RULES])
    m = analyzed(report)
    assert codes(report) == []
    g = graph_of(m)
    # A library-style LayerNorm2d subclass with permutes is a norm, not a pile of reshapes.
    assert sum(n.kind == NORM and n.module_type == "LayerNorm2d" for n in g) == 5
    assert sum(n.op == "sdpa" for n in g) == 4
    assert m.shortest_depth <= 4  # stem, downsampling conv, head: the rest is residual
    assert m.depth >= 20
    assert not any(layer.type == "Embedding" for layer in m.layers)


def test_weight_layers_of_the_hybrid_are_in_execution_order(write):
    report = analyze_path(write("hybrid.py", HYBRID), select=["GL0"])
    names = [layer.module for layer in analyzed(report).layers]
    assert names[0] == "stem.0" and names[-1] == "head"
    assert names.index("stage1.2.pw2") < names.index("down.1") < names.index("stage2.0.cpe")
    assert all(g.kind != EMBEDDING for g in graph_of(report.models[0]) if g.is_weight_layer)


def test_position_tables_are_not_weight_layers(write):
    # nanoGPT's wpe: an Embedding looked up with arange positions. The JSON contract lists
    # weight layers; position embeddings (and T5's relative-position buckets) are not among them.
    src = """
    import torch
    import torch.nn as nn


    class TinyGPT(nn.Module):
        def __init__(self, vocab=100, block=32, d=16):
            super().__init__()
            self.wte = nn.Embedding(vocab, d)
            self.wpe = nn.Embedding(block, d)
            self.fc = nn.Linear(d, d)
            self.lm_head = nn.Linear(d, vocab, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, idx):
            pos = torch.arange(0, idx.shape[1], device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            return self.lm_head(torch.relu(self.fc(x)))
    """
    report = analyze_path(write("gpt.py", src), select=["GL0"])
    assert [layer.module for layer in analyzed(report).layers] == ["wte", "fc"]


def test_namedtuple_outputs_with_auxiliary_heads(write):
    # torchvision's GoogLeNet/Inception-v3 return a namedtuple in train mode; fx records it as a
    # call to the class. Its tensors must reach the output, or the model has no depth at all.
    src = """
    from collections import namedtuple

    import torch
    import torch.nn as nn

    Outputs = namedtuple("Outputs", ["logits", "aux_logits"])


    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
            self.aux = nn.Linear(8, 4)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            h = self.body(x).mean((2, 3))
            aux = self.aux(h) if self.training else None
            return Outputs(self.fc(h), aux)
    """
    report = analyze_path(write("m.py", src), select=["GL0"])
    m = analyzed(report)
    assert m.capture == "fx"
    assert (m.depth, m.shortest_depth) == (3, 3)
