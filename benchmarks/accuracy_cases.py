"""The model zoo of the accuracy benchmark: synthetic sweeps and library models.

Each ``Case`` is a factory (builds the model with the current torch seed), a function making
example inputs (random, with the current seed) and a family. Library families (torchvision,
timm, transformers) are listed only when the package imports.

    python benchmarks/accuracy_cases.py   # list the cases per family
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1), "softplus": nn.Softplus,
}
GAIN_NAME = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu"}


@dataclass
class Case:
    family: str
    name: str
    factory: Callable[[], nn.Module]
    inputs: Callable[[], tuple]
    dtype: torch.dtype = torch.float64  # measured in double: deep sigmoid stacks underflow float32
    hard: str = ""  # the named hard case this model checks, if any
    tags: dict[str, Any] = field(default_factory=dict)


# -- initialization -------------------------------------------------------------------------------

def init_weights(model: nn.Module, init: str, act: str) -> None:
    """default (PyTorch's), he (kaiming_normal_), xavier (xavier_normal_ with the activation's
    gain where torch has one), small (N(0, 0.01^2))."""
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="leaky_relu" if act == "leaky_relu" else "relu",
                                        a=0.1 if act == "leaky_relu" else 0.0)
            elif init == "xavier":
                gain = nn.init.calculate_gain(GAIN_NAME[act], 0.1) if act in GAIN_NAME else 1.0
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init == "small":
                nn.init.normal_(m.weight, std=0.01)


# -- MLPs -----------------------------------------------------------------------------------------

def _norm1d(kind: str, width: int) -> nn.Module:
    return {"none": nn.Identity, "bn": lambda: nn.BatchNorm1d(width), "ln": lambda: nn.LayerNorm(width),
            "gn": lambda: nn.GroupNorm(8, width)}[kind]()


class MLP(nn.Module):
    """Linear -> norm -> act, repeated; residual blocks x + act(norm(fc(x))) when asked."""

    def __init__(self, depth: int, width: int, act: str, norm: str, residual: bool, d_in: int, classes: int = 10):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(depth - 2)])
        self.norms = nn.ModuleList([_norm1d(norm, width) for _ in range(depth - 1)])
        self.act = ACTIVATIONS[act]()
        self.head = nn.Linear(width, classes)
        self.residual = residual

    def forward(self, x):
        x = self.act(self.norms[0](self.inp(x)))
        for fc, norm in zip(self.fcs, self.norms[1:]):
            y = self.act(norm(fc(x)))
            x = x + y if self.residual else y
        return self.head(x)


def mlp_case(depth, act, init, norm, residual, width=256, batch=64, hard=""):
    d_in = 64

    def factory():
        m = MLP(depth, width, act, norm, residual, d_in)
        init_weights(m, init, act)
        return m

    name = f"mlp-{act}-d{depth}-{init}-{norm}-{'res' if residual else 'plain'}" + (f"-b{batch}" if batch != 64 else "")
    return Case("mlp", name, factory, lambda: (torch.randn(batch, d_in),), hard=hard,
                tags={"depth": depth, "act": act, "init": init, "norm": norm, "residual": residual})


def mlp_cases() -> list[Case]:
    """Every activation at every depth, three (init, norm, residual) settings each, rotating
    through the 4 x 4 x 2 grid so each setting appears at each depth; plus the named hard cases."""
    grid = list(itertools.product(["default", "he", "xavier", "small"], ["none", "bn", "ln", "gn"], [False, True]))
    cases = []
    k = 0
    for depth in (4, 10, 20, 50):
        for act in ACTIVATIONS:
            for _ in range(3):
                init, norm, residual = grid[(k * 7) % len(grid)]
                k += 1
                cases.append(mlp_case(depth, act, init, norm, residual))
    cases += [
        mlp_case(20, "sigmoid", "default", "ln", False, hard="sigmoid + LayerNorm: LayerNorm does not rescue it"),
        mlp_case(10, "sigmoid", "xavier", "ln", False, hard="sigmoid + LayerNorm: LayerNorm does not rescue it"),
        mlp_case(20, "sigmoid", "default", "bn", False, hard="sigmoid + BatchNorm: BatchNorm does"),
        mlp_case(50, "relu", "default", "bn", False, batch=16, hard="deep BatchNorm + ReLU: ~1.5x per layer, explodes"),
        mlp_case(30, "relu", "default", "bn", False, batch=16, hard="deep BatchNorm + ReLU: ~1.5x per layer"),
        mlp_case(20, "relu", "default", "none", False, hard="default-init ReLU MLP vanishes at depth 20"),
        mlp_case(10, "relu", "default", "none", False, hard="default-init ReLU MLP at depth 10 (healthy)"),
        mlp_case(20, "relu", "he", "none", False, hard="He-init ReLU MLP keeps its scale"),
    ]
    seen, out = set(), []
    for c in cases:  # the rotation may hit a hard case's settings: keep one of each name
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


# -- CNNs -----------------------------------------------------------------------------------------

def _norm2d(kind: str, ch: int) -> nn.Module:
    return {"none": nn.Identity, "bn": lambda: nn.BatchNorm2d(ch), "ln": lambda: nn.GroupNorm(1, ch),
            "gn": lambda: nn.GroupNorm(8, ch)}[kind]()


class CNN(nn.Module):
    """3x3 convs (stem + depth-2 body), two 2x2 average-pool downsamplings (or strided convs),
    global average (or max) pooling, a linear head."""

    def __init__(self, depth: int, ch: int, act: str, norm: str, residual: bool, pool: str = "avg",
                 strided: bool = False, classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, ch, 3, padding=1)
        n = depth - 2
        self.down = {n // 3, (2 * n) // 3} if n >= 3 else set()
        self.convs = nn.ModuleList([
            nn.Conv2d(ch, ch, 3, padding=1, stride=2 if (strided and i in self.down) else 1) for i in range(n)])
        self.norms = nn.ModuleList([_norm2d(norm, ch) for _ in range(depth - 1)])
        self.act = ACTIVATIONS[act]()
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(ch, classes)
        self.residual, self.strided = residual, strided

    def forward(self, x):
        x = self.act(self.norms[0](self.stem(x)))
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms[1:])):
            y = self.act(norm(conv(x)))
            if self.strided and i in self.down:
                x = y
            else:
                x = x + y if self.residual else y
                if i in self.down:
                    x = F.avg_pool2d(x, 2)
        return self.head(torch.flatten(self.pool(x), 1))


def cnn_case(depth, act, init, norm, residual, ch=32, side=16, batch=16, pool="avg", strided=False, hard=""):
    def factory():
        m = CNN(depth, ch, act, norm, residual, pool, strided)
        init_weights(m, init, act)
        return m

    name = (f"cnn-{act}-d{depth}-{init}-{norm}-{'res' if residual else 'plain'}"
            + ("-maxpool" if pool == "max" else "") + ("-strided" if strided else ""))
    return Case("cnn", name, factory, lambda: (torch.randn(batch, 3, side, side),), hard=hard,
                tags={"depth": depth, "act": act, "init": init, "norm": norm, "residual": residual})


def cnn_cases() -> list[Case]:
    grid = list(itertools.product(["default", "he", "xavier", "small"], ["none", "bn", "ln", "gn"], [False, True]))
    cases = []
    k = 3
    for depth in (4, 12, 30):
        for act in ACTIVATIONS:
            for _ in range(2):
                init, norm, residual = grid[(k * 5) % len(grid)]
                k += 1
                cases.append(cnn_case(depth, act, init, norm, residual))
    cases += [
        cnn_case(50, "relu", "he", "bn", True, hard="deep residual BN CNN (ResNet-like): large but benign"),
        cnn_case(50, "relu", "default", "bn", False, hard="deep plain BN CNN (many positions per channel: ~1.25x per layer)"),
        cnn_case(12, "relu", "he", "none", False, pool="max"),
        cnn_case(12, "relu", "he", "bn", False, strided=True),
        cnn_case(20, "tanh", "xavier", "none", False, strided=True),
    ]
    return cases


# -- recurrent ------------------------------------------------------------------------------------

class Recurrent(nn.Module):
    def __init__(self, kind: str, hidden: int, layers: int, read: str, d_in: int = 32, classes: int = 10,
                 forget_bias: float | None = None):
        super().__init__()
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cls(d_in, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, classes)
        self.read = read
        if forget_bias is not None and kind == "lstm":
            with torch.no_grad():
                for name, p in self.rnn.named_parameters():
                    if name.startswith("bias"):
                        p[hidden:2 * hidden] = forget_bias / 2

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1] if self.read == "last" else out)


def rnn_cases() -> list[Case]:
    cases = []
    for kind in ("rnn", "lstm", "gru"):
        for steps in (8, 64):
            for layers, read in ((1, "last"), (2, "all")):
                def factory(kind=kind, layers=layers, read=read):
                    return Recurrent(kind, 64, layers, read)

                cases.append(Case("rnn", f"{kind}-T{steps}-L{layers}-{read}", factory,
                                  lambda steps=steps: (torch.randn(32, steps, 32),),
                                  tags={"kind": kind, "steps": steps}))
    cases.append(Case("rnn", "lstm-T64-L1-last-forgetbias1", lambda: Recurrent("lstm", 64, 1, "last", forget_bias=1.0),
                      lambda: (torch.randn(32, 64, 32),)))
    return cases


# -- transformers ---------------------------------------------------------------------------------

class Encoder(nn.Module):
    """Token embedding + learned positions + nn.TransformerEncoderLayer blocks + a head."""

    def __init__(self, depth: int, pre_ln: bool, d: int = 64, heads: int = 4, vocab: int = 500, seq: int = 16,
                 dropout: float = 0.0, act: str = "relu"):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(d, heads, 2 * d, dropout, activation=act,
                                                                batch_first=True, norm_first=pre_ln)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(d) if pre_ln else nn.Identity()
        self.head = nn.Linear(d, 10)

    def forward(self, ids):
        x = self.tok(ids) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


class SDPABlock(nn.Module):
    """A pre-LN block written with F.scaled_dot_product_attention (timm/GPT style)."""

    def __init__(self, d: int, heads: int, causal: bool):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads, self.causal = heads, causal

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.n2(x))))


class SDPAEncoder(nn.Module):
    def __init__(self, depth: int, causal: bool, d: int = 64, seq: int = 16):
        super().__init__()
        self.inp = nn.Linear(32, d)
        self.blocks = nn.ModuleList([SDPABlock(d, 4, causal) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.inp(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


def transformer_cases() -> list[Case]:
    cases = []
    for depth in (2, 6, 12):
        for pre in (True, False):
            cases.append(Case("transformer", f"encoder-{'preln' if pre else 'postln'}-d{depth}",
                              lambda depth=depth, pre=pre: Encoder(depth, pre),
                              lambda: (torch.randint(0, 500, (16, 16)),),
                              hard="pre-LN vs post-LN" if depth == 12 else "", tags={"depth": depth, "pre": pre}))
    cases.append(Case("transformer", "encoder-preln-d24", lambda: Encoder(24, True), lambda: (torch.randint(0, 500, (16, 16)),),
                      hard="pre-LN vs post-LN"))
    cases.append(Case("transformer", "encoder-postln-d24", lambda: Encoder(24, False), lambda: (torch.randint(0, 500, (16, 16)),),
                      hard="pre-LN vs post-LN"))
    cases.append(Case("transformer", "encoder-preln-d6-gelu-dropout", lambda: Encoder(6, True, dropout=0.1, act="gelu"),
                      lambda: (torch.randint(0, 500, (16, 16)),)))
    for depth, causal in ((4, False), (12, False), (12, True)):
        cases.append(Case("transformer", f"sdpa-preln-d{depth}{'-causal' if causal else ''}",
                          lambda depth=depth, causal=causal: SDPAEncoder(depth, causal),
                          lambda: (torch.randn(16, 16, 32),)))
    return cases


# -- library models ---------------------------------------------------------------------------------

def torchvision_cases() -> list[Case]:
    try:
        import torchvision.models as tvm
    except Exception:  # noqa: BLE001 - not installed, or built for another torch
        return []
    cases = []
    specs = [("resnet18", 224), ("resnet50", 224), ("resnet101", 224), ("resnet152", 224), ("vgg11", 224), ("vgg11_bn", 224),
             ("inception_v3", 299), ("mobilenet_v2", 224), ("densenet121", 224), ("efficientnet_b0", 224),
             ("convnext_tiny", 224), ("vit_b_16", 224), ("regnet_y_400mf", 224), ("squeezenet1_1", 224),
             ("shufflenet_v2_x1_0", 224), ("alexnet", 224), ("mnasnet0_5", 224)]
    hard = {"resnet50": "standard BN architecture: large but benign", "resnet101": "standard BN architecture: large but benign",
            "resnet152": "standard BN architecture: large but benign",
            "inception_v3": "standard BN architecture: large but benign", "vit_b_16": "zero-init classifier head"}
    for name, side in specs:
        kwargs = {"weights": None}
        if name == "inception_v3":
            kwargs.update(aux_logits=False, init_weights=True)
        cases.append(Case("torchvision", name, lambda name=name, kwargs=kwargs: getattr(tvm, name)(**kwargs),
                          lambda side=side: (torch.randn(8, 3, side, side),), dtype=torch.float32, hard=hard.get(name, "")))
    return cases


def timm_cases() -> list[Case]:
    try:
        import timm
    except Exception:  # noqa: BLE001
        return []
    cases = []
    for name in ("resnet26d", "deit_tiny_patch16_224", "convnext_atto", "efficientnet_b0", "mixer_s16_224",
                 "regnetx_002"):
        cases.append(Case("timm", name, lambda name=name: timm.create_model(name, pretrained=False),
                          lambda: (torch.randn(8, 3, 224, 224),), dtype=torch.float32))
    return cases


def transformers_cases() -> list[Case]:
    try:
        import transformers as tf
    except Exception:  # noqa: BLE001
        return []
    small = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256,
                 vocab_size=1000, max_position_embeddings=64)
    specs = [
        ("bert", lambda: tf.BertModel(tf.BertConfig(**small))),
        ("gpt2", lambda: tf.GPT2Model(tf.GPT2Config(n_embd=128, n_layer=4, n_head=4, vocab_size=1000, n_positions=64))),
        ("llama", lambda: tf.LlamaModel(tf.LlamaConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                                                      intermediate_size=256, vocab_size=1000,
                                                      max_position_embeddings=64))),
        ("bert-12", lambda: tf.BertModel(tf.BertConfig(**{**small, "num_hidden_layers": 12}))),
    ]
    return [Case("transformers", name, f, lambda: (torch.randint(0, 1000, (8, 32)),), dtype=torch.float32)
            for name, f in specs]


FAMILIES: dict[str, Callable[[], list[Case]]] = {
    "mlp": mlp_cases, "cnn": cnn_cases, "rnn": rnn_cases, "transformer": transformer_cases,
    "torchvision": torchvision_cases, "timm": timm_cases, "transformers": transformers_cases,
}


def all_cases(families: list[str] | None = None) -> list[Case]:
    out = []
    for fam, make in FAMILIES.items():
        if families is None or fam in families:
            out += make()
    return out


if __name__ == "__main__":
    for fam, make in FAMILIES.items():
        cases = make()
        print(f"{fam}: {len(cases)}")
    print("total:", sum(len(m()) for m in FAMILIES.values()))

