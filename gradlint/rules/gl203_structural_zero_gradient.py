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
        GL201 stays silent. The finding is a note (severity info: never counted, never fails a
        run), one per model however many blocks carry a zero (a zero-gamma ResNet has one per
        block), and points at the zero-initialized module or gate that decides the verdict.

        Zero weights that never resolve are an error: when two zero-initialized layers depend on
        each other (the second's input is the first's zero output, and the first's error signal
        crosses the second's zero weights), gradient descent never moves either of them. gradlint
        follows the steps: zero weights whose predicted gradient is nonzero move first, the rest
        is estimated again as if they had moved, and what is still stuck is reported.
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
        Example(
            """
            import torch.nn as nn


            class TwoZeroLayers(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(32, 64)
                    self.fc2 = nn.Linear(64, 64)
                    self.head = nn.Linear(64, 10)
                    nn.init.zeros_(self.fc2.weight)
                    nn.init.zeros_(self.fc2.bias)
                    nn.init.zeros_(self.head.weight)

                def forward(self, x):
                    return self.head(self.fc2(self.fc1(x)).relu())
            """,
            line=8,
            severity="error",
            note="Two zero layers in a row never move: an error, not a note. fc2's gradient needs the head to be "
                 "nonzero and the head's needs fc2's output to be nonzero.",
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
        if est.unresolved_zeros:
            yield self._never_resolves(ctx, est)
            return
        by_reason: dict[str, list] = {}
        for ly in est.layers:
            if ly.zero and ly.grad_rms == 0.0:
                by_reason.setdefault(ly.zero, []).append(ly)
        if not by_reason:
            return
        # one note per model: a zero-gamma ResNet has a zero per block, not a problem per block
        primary = est.zero_reason if est.zero_reason in by_reason else next(iter(by_reason))
        layers = list({ly.module: ly for group in by_reason.values() for ly in group}.values())
        names = ", ".join(ly.module for ly in layers[:3]) + (", ..." if len(layers) > 3 else "")
        verdict = " (the model's verdict is structural-zero)" if est.zero_reason else ""
        one = len(layers) == 1
        if len(by_reason) == 1:
            cause = primary
        else:
            others = [r for r in by_reason if r != primary]
            cause = (f"{len(by_reason)} zero-initialized weights or scales ({primary}; {others[0]}"
                     + ("; ..." if len(others) > 1 else "") + ")")
        msg = (f"structural zero: {cause}, so {len(layers)} weight layer{'' if one else 's'} ({names}) "
               f"get{'s' if one else ''} exactly zero gradient at initialization{verdict}; intended for "
               "Fixup/ReZero/SkipInit/LayerScale/zero-init heads, it resolves after the first optimizer step")
        node_id = est.zero_sources.get(primary)
        where = ctx.graph[node_id].location if node_id is not None else None
        yield self.finding(msg, where or layers[0].location,
                           "nothing if the zero init is intended; otherwise initialize that weight normally "
                           "(a small normal init for a head)")

    def _never_resolves(self, ctx: RuleContext, est) -> Finding:
        stuck = est.unresolved_zeros
        modules = {n.rpartition(".")[0] for n in stuck}
        layers = [ly for ly in est.layers if ly.module in modules]
        dead = [ly for ly in est.layers if ly.zero and ly.grad_rms == 0.0]
        names = ", ".join(stuck[:4]) + (", ..." if len(stuck) > 4 else "")
        msg = (f"zero-initialized weights that gradient descent never moves: {names}; each one's gradient stays zero "
               f"while the others are zero (a zero layer's input is another's zero output, or its error signal "
               f"crosses another's zero weights), so {len(dead)} weight layer{'' if len(dead) == 1 else 's'} "
               "never learn")
        return self.finding(msg, layers[0].location if layers else None,
                            f"initialize {stuck[0]} (or all but one of them) normally, e.g. "
                            "nn.init.kaiming_normal_(layer.weight); keep at most one zero layer on a path",
                            severity="error")
