from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..ir.graph import ACTIVATION
from ..ir.ops import SATURATING, SATURATING_MAX_DERIVATIVE
from ..ir.structure import is_norm
from .base import Example, Option, Rule, RuleContext
from .finding import Finding

def is_saturating(n) -> bool:
    return n.kind == ACTIVATION and n.op in SATURATING


class DeepSaturatingChain(Rule):
    code = "GL101"
    name = "deep-saturating-chain"
    severity = "error"
    evidence_gated = True
    summary = "Many sigmoid/tanh-family activations in a row, with no normalization or skip connection between them."
    what = """
        Finds the longest chain of saturating activations (sigmoid, tanh, hardsigmoid, hardtanh,
        softsign, logsigmoid) along one path of the captured graph, where no normalization layer
        sits between two of them and no skip connection lets the gradient go around them. The
        finding points at the line that constructs the first activation of the chain (or the
        functional call, such as `torch.tanh(x)` in `forward`).

        The default `min-chain` is 5 because 0.25^5 = 9.8e-4: five sigmoid derivatives alone can
        take the gradient below the 1e-3 vanishing threshold (AUTOTRAINER's), before the weights
        shrink it further. tanh has slope 1 only at 0 and E[tanh'(z)^2] = 0.46 for unit-variance
        inputs, so five tanh layers lose ~0.46^5 = 2% of the squared gradient norm per path at
        best, and far more once they saturate. Gates (`x * sigmoid(g)`, LSTM/GRU internals,
        squeeze-and-excitation) are not chains: the gradient reaches `x` without crossing the
        sigmoid's derivative.
    """
    why = """
        Backpropagation multiplies one activation derivative per layer. sigmoid' <= 0.25 and
        tanh' < 1 (about 0 once saturated), so the error signal reaching the early layers shrinks
        geometrically with the length of the chain, and those layers barely learn.
    """
    fix = """
        Use a ReLU-family activation (ReLU, LeakyReLU, GELU, SiLU) in the hidden layers and keep
        sigmoid/tanh for outputs and gates; or put BatchNorm/LayerNorm before each saturating
        activation; or add residual connections (`x = x + block(x)`) around the blocks.
    """
    references = [
        "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural networks",
        "Hochreiter 1991; Bengio, Simard & Frasconi 1994 (vanishing gradients)",
        "AUTOTRAINER (Zhang et al., ICSE 2021): vanishing when the first/last gradient ratio < 1e-3",
    ]
    options = {"min-chain": Option(int, 5, "report chains of at least this many saturating activations", min=1)}
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.act = nn.Sigmoid()

                def forward(self, x):
                    return self.act(self.fc(x))


            class DeepSigmoidMLP(nn.Module):
                def __init__(self, depth=8, width=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))
            """,
            line=8,
            note="Eight sigmoid layers in a row: the finding points at `nn.Sigmoid()` in the block.",
        ),
        Example(
            """
            import torch
            import torch.nn as nn


            class TanhStack(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(16, 16) for _ in range(6)])

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.tanh(layer(x))
                    return x
            """,
            line=12,
            severity="info",
            note="Functional activations count too: the finding points at the `torch.tanh` call. Six tanh layers "
                 "keep about a quarter of the gradient, so the estimate makes this a note, not a problem.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return self.act(self.fc(x))


            class DeepReLUMLP(nn.Module):
                def __init__(self, depth=8, width=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
                    self.head = nn.Linear(width, 10)

                def forward(self, x):
                    return self.head(self.blocks(x))
            """,
            note="ReLU passes the gradient unchanged where it is active.",
        ),
        Example(
            """
            import torch.nn as nn


            class Shallow(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(
                        nn.Linear(16, 32), nn.Sigmoid(),
                        nn.Linear(32, 32), nn.Sigmoid(),
                        nn.Linear(32, 1), nn.Sigmoid(),
                    )

                def forward(self, x):
                    return self.net(x)
            """,
            note="A 3-layer sigmoid MLP is too shallow to matter.",
        ),
        Example(
            """
            import torch.nn as nn


            class ResidualSigmoid(nn.Module):
                def __init__(self, depth=8):
                    super().__init__()
                    self.fcs = nn.ModuleList([nn.Linear(16, 16) for _ in range(depth)])
                    self.act = nn.Sigmoid()

                def forward(self, x):
                    for fc in self.fcs:
                        x = x + self.act(fc(x))
                    return x
            """,
            note="Each sigmoid sits on a residual branch: the skip path carries the gradient around it.",
        ),
        Example(
            """
            import torch.nn as nn


            class NormalizedTanh(nn.Module):
                def __init__(self, depth=8):
                    super().__init__()
                    layers = []
                    for _ in range(depth):
                        layers += [nn.Linear(16, 16), nn.BatchNorm1d(16), nn.Tanh()]
                    self.net = nn.Sequential(*layers)

                def forward(self, x):
                    return self.net(x)
            """,
            note="BatchNorm before every tanh keeps its input out of the saturated range.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        graph = ctx.graph
        run = ctx.structure.run(counts=is_saturating, resets=is_norm, merge="min")
        if run.length < self.opts["min-chain"]:
            return
        acts = [graph[i] for i in run.nodes]
        ops = Counter(n.op for n in acts)
        bound = 1.0
        for n in acts:
            bound *= SATURATING_MAX_DERIVATIVE.get(n.op, 1.0)
        kinds = ", ".join(f"{op} x{k}" for op, k in ops.most_common())
        first, last = acts[0], acts[-1]
        span = f"from {first.module or first.op} to {last.module or last.op}"
        bound_txt = f"; the activation derivatives alone bound the gradient by {bound:.1e}" if bound < 1 else (
            "; tanh-like derivatives are < 1 off zero and ~0 when saturated")
        msg = (f"{run.length} saturating activations in a row ({kinds}) with no normalization or skip "
               f"connection between them, {span}{bound_txt}")
        fix = ("use ReLU/GELU/SiLU in hidden layers (keep sigmoid/tanh for outputs and gates), or add "
               "BatchNorm/LayerNorm before each activation, or a residual connection around each block")
        yield self.finding(msg, first.location, fix)
