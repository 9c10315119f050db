from __future__ import annotations

from typing import Iterable

from ..ir.graph import CONV, CONV_TRANSPOSE
from ..ir.structure import is_depth_layer, is_norm
from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .locating import representative_location


class MissingNormalization(Rule):
    code = "GL102"
    name = "missing-normalization"
    severity = "warning"
    evidence_gated = True
    summary = "A deep stack of weight layers with no normalization layer between them."
    what = """
        Finds the longest run of weight layers (Linear, Conv, recurrent, attention; embeddings
        excepted) along one input-to-output path with no normalization layer (BatchNorm,
        LayerNorm, GroupNorm, InstanceNorm, RMSNorm, or a weight-standardized convolution as in
        NFNets and BiT) anywhere in between, and reports it when it is at least `min-depth` layers
        long (default 10). Skip connections do not break the run: they protect the gradient's
        path, not the scale of the activations. Gates (`x * sigmoid(s)`, squeeze-excitation) are
        side branches: the run goes on through `x`. A residual branch that is one weight layer
        and nothing nonlinear (`x + conv(x)`, the convolutional position encodings of CoaT and
        DaViT) does not lengthen it: `I + W` has gradient gain 1 + chi, close to one.

        The default of 10 keeps ordinary small nets (3–8 layers) quiet while catching the depths
        at which un-normalized nets become sensitive to initialization: at 10 layers an init that
        is off by 20% per layer changes the gradient scale by 0.8^10 ≈ 0.1 or 1.2^10 ≈ 6.
    """
    why = """
        Without normalization the scale of activations and gradients is whatever the product of
        the weight scales makes it: deep stacks drift towards vanishing or exploding signals, and
        saturating activations get pushed into their flat regions. BatchNorm/LayerNorm re-center
        and re-scale every layer, which keeps the per-layer gradient gain near one.
    """
    fix = """
        Add a normalization layer after each weight layer (before the activation): BatchNorm2d
        for convolutions, LayerNorm for MLPs and transformers (GroupNorm for small batches). For
        a deliberately normalization-free design, use an init that accounts for depth (Fixup,
        SkipInit, NF-ResNets) and suppress this rule with `# noqa: GL102`.
    """
    references = [
        "Ioffe & Szegedy 2015, Batch Normalization",
        "Ba, Kiros & Hinton 2016, Layer Normalization",
        "Zhang, Dauphin & Ma 2019, Fixup Initialization (normalization-free alternative)",
    ]
    options = {"min-depth": Option(int, 10, "report runs of at least this many weight layers without normalization", min=1)}
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class PlainCNN(nn.Module):
                def __init__(self, depth=12, channels=16):
                    super().__init__()
                    layers = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
                    for _ in range(depth - 1):
                        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
                    self.features = nn.Sequential(*layers)
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.head = nn.Linear(channels, 10)

                def forward(self, x):
                    return self.head(self.pool(self.features(x)).flatten(1))
            """,
            line=9,
            note="Thirteen weight layers and not one BatchNorm: the finding points at the repeated convolution.",
        )
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class BNCNN(nn.Module):
                def __init__(self, depth=12, channels=16):
                    super().__init__()
                    layers = [nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
                    for _ in range(depth - 1):
                        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
                    self.features = nn.Sequential(*layers)
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.head = nn.Linear(channels, 10)

                def forward(self, x):
                    return self.head(self.pool(self.features(x)).flatten(1))
            """,
            note="A BatchNorm after every convolution.",
        ),
        Example(
            """
            import torch.nn as nn


            class Small(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Sigmoid(),
                                             nn.Linear(32, 1))

                def forward(self, x):
                    return self.net(x)
            """,
            note="Three layers: normalization is optional at this depth.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        run = ctx.structure.run(counts=is_depth_layer, resets=is_norm, merge="max")
        if run.length < self.opts["min-depth"]:
            return
        layers = [ctx.graph[i] for i in run.nodes]
        convs = sum(n.kind in (CONV, CONV_TRANSPOSE) for n in layers)
        norm = "BatchNorm2d (or GroupNorm)" if convs * 2 >= len(layers) else "LayerNorm (or BatchNorm1d)"
        first, last = layers[0], layers[-1]
        msg = (f"{run.length} weight layers in a row ({first.module} ... {last.module}) with no normalization "
               f"layer between them")
        fix = (f"add {norm} after each weight layer, before its activation; normalization-free designs need a "
               "depth-aware init (Fixup/SkipInit)")
        yield self.finding(msg, representative_location(layers), fix)
