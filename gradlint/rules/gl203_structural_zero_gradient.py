from __future__ import annotations

from typing import Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding


class StructuralZeroGradient(Rule):
    code = "GL203"
    name = "structural-zero-gradient"
    severity = "info"
    requires = "estimate"
    summary = "A zero-initialized weight or gate makes the gradient of earlier layers exactly zero at initialization (by design)."
    what = """
        Reports weight layers whose gradient is exactly zero at initialization because a weight or
        scale between them and the output is zero-initialized: a zero-init classifier head (as in
        torchvision's ViT), ReZero/SkipInit gates (`x + alpha * f(x)` with `alpha = 0`), LayerScale
        at zero, a zero-initialized last layer of a residual branch (Fixup), a zero BatchNorm gamma,
        the zero gain of a weight-standardized conv (NFNets' `ScaledStdConv2d` with zero_init_last).
        Layers that read the exactly-zero output of such a scale count too: a squeeze-and-excitation
        branch behind a zero-initialized last BatchNorm (timm's SE-ResNets) gets neither an input
        nor an error signal (its gate multiplies a zero tensor).
        The estimate's verdict for such a model is `structural-zero` instead of `vanishing`, and
        GL201 stays silent. The finding points at the zero-initialized module or gate.
    """
    why = """
        This is information, not a problem: the first optimizer step moves the zero weight and the
        gradient flows from then on. It is reported so that a measured or predicted zero gradient
        is not mistaken for a vanishing one, and so that an accidental zero init (a copy-paste
        `nn.init.zeros_` on the wrong layer) is visible.
    """
    fix = """
        Nothing, if the zero init is intended. If not, initialize the named weight normally (or, for
        a head, with a small normal init) so the earlier layers learn from the first step.
    """
    references = [
        "Zhang, Dauphin & Ma 2019, Fixup Initialization",
        "Bachlechner et al. 2020, ReZero is All You Need",
        "De & Smith 2020, SkipInit",
        "Dosovitskiy et al. 2021 (ViT zero-initializes its classifier head); torchvision VisionTransformer",
    ]
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class ZeroHead(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
                    self.head = nn.Linear(64, 10)
                    nn.init.zeros_(self.head.weight)

                def forward(self, x):
                    return self.head(self.body(x))
            """,
            line=8,
            note="A zero-initialized classifier head: every layer before it gets exactly zero gradient at step 0.",
        ),
        Example(
            """
            import torch
            import torch.nn as nn


            class ReZero(nn.Module):
                def __init__(self, depth=4, width=32):
                    super().__init__()
                    self.stem = nn.Linear(width, width)
                    self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    self.alphas = nn.ParameterList([nn.Parameter(torch.zeros(1)) for _ in range(depth)])

                def forward(self, x):
                    x = self.stem(x)
                    for fc, alpha in zip(self.fcs, self.alphas):
                        x = x + alpha * torch.relu(fc(x))
                    return x
            """,
            line=15,
            note="ReZero: each residual branch is multiplied by a gate that starts at zero.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class SmallHead(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
                    self.head = nn.Linear(64, 10)
                    nn.init.normal_(self.head.weight, std=0.01)

                def forward(self, x):
                    return self.head(self.body(x))
            """,
            note="A small (not zero) head init: the gradient is small but flows.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        est = ctx.estimate
        by_reason: dict[str, list] = {}
        for ly in est.layers:
            if ly.zero and ly.grad_rms == 0.0:
                by_reason.setdefault(ly.zero, []).append(ly)
        for reason, layers in by_reason.items():
            node_id = est.zero_sources.get(reason)
            where = ctx.graph[node_id].location if node_id is not None else None
            names = ", ".join(ly.module for ly in layers[:3]) + (", ..." if len(layers) > 3 else "")
            verdict = " (the model's verdict is structural-zero)" if est.zero_reason == reason else ""
            one = len(layers) == 1
            msg = (f"structural zero: {reason}, so {len(layers)} weight layer{'' if one else 's'} "
                   f"({names}) get{'s' if one else ''} exactly zero gradient at initialization{verdict}; intended for "
                   "Fixup/ReZero/SkipInit/zero-init heads, it resolves after the first optimizer step")
            yield self.finding(msg, where or layers[0].location,
                               "nothing if the zero init is intended; otherwise initialize that weight normally "
                               "(a small normal init for a head)")
