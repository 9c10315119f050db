from __future__ import annotations

from typing import Iterable

from ..analysis import is_depth_layer
from ..report.model import Finding
from .base import Example, Option, Rule, RuleContext
from .locating import representative_location


class NoSkipConnections(Rule):
    code = "GL103"
    name = "no-skip-connections"
    severity = "warning"
    summary = "A deep stack whose every input-to-output path crosses many weight layers: no skip connection."
    what = """
        Measures depth as weight layers along input-to-output paths of the captured graph
        (embeddings excepted) and reports a model whose *shortest* such path is at least
        `min-depth` layers (default 20): the gradient has no shorter way back to the early layers.
        A residual (`x + f(x)`) or dense (`cat([x, f(x)])`) connection makes a short path, so a
        ResNet's skip path keeps it quiet however deep the residual branches are.

        The default of 20 follows He et al. (2016): plain (non-residual) networks already train
        worse at 34 layers than at 18, even with BatchNorm, while VGG-16/19-sized plain nets still
        train.
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
    options = {"min-depth": Option(int, 20, "report when the shortest input-to-output path has at least this many weight layers")}
    INVALID = [
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


            class PlainDeep(nn.Module):
                def __init__(self, depth=24):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)
            """,
            line=7,
            note="24 normalized blocks, but every gradient crosses all 24 weight layers.",
        )
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
                def __init__(self, depth=24):
                    super().__init__()
                    self.blocks = nn.Sequential(*[Block() for _ in range(depth)])

                def forward(self, x):
                    return self.blocks(x)
            """,
            note="The same depth with residual blocks: the skip path crosses no weight layer.",
        )
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        s = ctx.structure
        if s.shortest_depth < self.opts["min-depth"]:
            return
        layers = [ctx.graph[i] for i in s.longest_path if is_depth_layer(ctx.graph[i])]
        via = "" if s.depth == s.shortest_depth else f" (longest: {s.depth})"
        msg = (f"every input-to-output path crosses at least {s.shortest_depth} weight layers{via}: no skip "
               f"connection gives the gradient a shorter way back")
        fix = "make the repeated block residual, x = x + block(x) (pre-norm: x + block(norm(x)))"
        yield self.finding(msg, representative_location(layers), fix)
