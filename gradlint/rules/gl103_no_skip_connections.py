from __future__ import annotations

from typing import Iterable

from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .locating import representative_location


class NoSkipConnections(Rule):
    code = "GL103"
    name = "no-skip-connections"
    severity = "warning"
    evidence_gated = True
    summary = "A deep stack whose every input-to-output path crosses many weight layers: no skip connection."
    what = """
        Measures depth as weight layers along input-to-output paths of the captured graph
        (embeddings excepted) and reports a model whose *shortest* such path is at least
        `min-depth` layers (default 20), or `min-depth-normalized` (default 30) when a
        normalization layer separates every two weight layers on that path (all but one in ten:
        mobile heads put a bare 1x1 conv before the classifier): the gradient has no
        shorter way back to the early layers. A residual (`x + f(x)`) or dense (`cat([x, f(x)])`)
        connection makes a short path, so a ResNet's skip path keeps it quiet however deep the
        residual branches are.

        The defaults follow He et al. (2016), who trained plain (non-residual) networks with
        BatchNorm: they train at 18-20 layers (as does VGG-19) and degrade from 32 (CIFAR) and 34
        (ImageNet) layers on. Inverted-residual networks (MobileNetV2, EfficientNet, MnasNet),
        whose stride-2 transition blocks leave 21-23 normalized layers on every path, train well.
        Without normalization the shorter depth applies (and GL102 reports the missing norms).
    """
    why = """
        Every weight layer on the way back multiplies the gradient by its Jacobian. Without a
        skip path the early layers see only the product of all of them, so small per-layer
        losses compound with depth (and plain deep nets degrade even when normalized). A skip
        connection adds an identity term to each block's Jacobian, so the gradient reaches the
        early layers undiminished.
    """
    fix = """
        Make the repeated block residual: `x = x + block(x)` (with a projection when the shape
        changes), or concatenate earlier features (DenseNet). Pre-norm residual blocks
        (`x = x + f(norm(x))`) are the most robust form.
    """
    references = [
        "He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (the degradation problem)",
        "Huang et al. 2017, Densely Connected Convolutional Networks",
        "Veit, Wilber & Belongie 2016, Residual Networks Behave Like Ensembles of Relatively Shallow Networks",
    ]
    options = {
        "min-depth": Option(int, 20, "report when the shortest input-to-output path has at least this many weight layers", min=1),
        "min-depth-normalized": Option(int, 30, "the same, when a normalization layer separates every two weight "
                                                "layers on that path", min=1),
    }
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.act = nn.Tanh()

                def forward(self, x):
                    return self.act(self.fc(x))


            class PlainDeep(nn.Module):
                def __init__(self, depth=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)
            """,
            line=7,
            note="32 tanh blocks and every gradient crosses all 32 weight layers: the estimate puts the first layer "
                 "at 1e-7 of the last.",
        ),
        Example(
            """
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.norm = nn.LayerNorm(width)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return self.act(self.norm(self.fc(x)))


            class PlainNormalizedDeep(nn.Module):
                def __init__(self, depth=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)
            """,
            line=7,
            severity="info",
            note="32 normalized blocks without a skip: the gradient's scale at initialization stays healthy (the "
                 "estimate gives 0.67), so this is a note; plain nets this deep still train worse than residual ones.",
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
                    self.norm = nn.LayerNorm(width)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return x + self.act(self.fc(self.norm(x)))


            class ResidualDeep(nn.Module):
                def __init__(self, depth=32):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)
            """,
            note="The same depth with residual blocks: the skip path crosses no weight layer.",
        ),
        Example(
            """
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, width=32):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    self.norm = nn.LayerNorm(width)
                    self.act = nn.ReLU()

                def forward(self, x):
                    return self.act(self.norm(self.fc(x)))


            class PlainNormalized(nn.Module):
                def __init__(self, depth=24):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)
            """,
            note="24 layers with a normalization after each: as deep as the shortest path of MobileNetV2 or "
                 "EfficientNet, which train well.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        s = ctx.structure
        if s.shortest_depth < self.opts["min-depth"]:
            return
        normalized = s.normalized_throughout(s.shortest_path)
        if normalized and s.shortest_depth < max(self.opts["min-depth"], self.opts["min-depth-normalized"]):
            return
        layers = [ctx.graph[i] for i in s.longest_path if s.is_depth(ctx.graph[i])]
        via = "" if s.depth == s.shortest_depth else f" (longest: {s.depth})"
        normed = ", each normalized" if normalized else ""
        msg = (f"every input-to-output path crosses at least {s.shortest_depth} weight layers{via}{normed}: no skip "
               f"connection gives the gradient a shorter way back")
        fix = "make the repeated block residual, x = x + block(x) (pre-norm: x + block(norm(x)))"
        yield self.finding(msg, representative_location(layers), fix)
