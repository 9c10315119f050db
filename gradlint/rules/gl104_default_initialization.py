from __future__ import annotations

from typing import Iterable

from ..ir.graph import ACTIVATION, Node
from ..ir.ops import SATURATING
from ..ir.structure import is_norm
from .base import Example, Option, Rule, RuleContext
from .finding import Finding
from .locating import representative_location

# chi = sigma_w^2 * E[phi'(z)^2] per layer with PyTorch's default init (sigma_w^2 = 1/3) at the
# small pre-activation variance such nets settle into (docs/estimator.md, "Consequences for plain stacks").
DEFAULT_INIT_CHI = {"relu": 1 / 6, "leaky_relu": 1 / 6, "relu6": 1 / 6, "prelu": 0.18, "gelu": 1 / 12,
                    "silu": 1 / 12, "mish": 0.1, "hardswish": 1 / 12, "elu": 0.27, "selu": 0.5,
                    "tanh": 1 / 3, "sigmoid": 0.02, "softplus": 0.1, "identity": 1 / 3}


def following_activation(ctx: RuleContext, node: Node, limit: int = 4) -> str | None:
    users = ctx.extras.setdefault("_users", ctx.graph.users())
    frontier, seen = [node.id], set()
    for _ in range(limit):
        nxt = []
        for i in frontier:
            for u in users[i]:
                if u in seen:
                    continue
                seen.add(u)
                un = ctx.graph[u]
                if un.kind == ACTIVATION:
                    return un.op
                if not un.is_weight_layer:
                    nxt.append(u)
        frontier = nxt
    return None


class DefaultInitialization(Rule):
    code = "GL104"
    name = "default-initialization"
    severity = "warning"
    evidence_gated = True
    summary = "A deep stack of Linear/Conv layers that keep PyTorch's default initialization."
    what = """
        PyTorch initializes `nn.Linear` and `nn.Conv*d` with `kaiming_uniform_(a=sqrt(5))`, that is
        U(±1/sqrt(fan_in)) with variance 1/(3·fan_in): sigma_w^2 = 1/3 instead of the 2 that He
        init gives ReLU layers. This rule finds runs of at least `min-layers` (default 5) such
        layers along one path with no normalization in between (a skip connection also ends the
        run).

        A layer counts as default-initialized only when two kinds of evidence agree: its weights
        (when the model is materialized: all entries within ±1/sqrt(fan_in), variance within
        sampling noise of 1/(3·fan_in)), and the code (no `nn.init.*`, in-place `normal_`/`uniform_`,
        `reset_parameters` or `_init_weights` touched the weight while the model was built, and the
        source's init code — found with libcst — either does not exist or demonstrably ran and
        skipped this layer). Built on the meta device, the weights are unknown and the source must
        contain no init code at all.

        The default of 5 is where a ReLU stack crosses the 1e-3 vanishing threshold by init
        alone: each default-init ReLU layer passes sigma_w^2/2 = 1/6 of the squared gradient norm,
        and (1/6)^4 = 7.7e-4.
    """
    why = """
        The weight scale multiplies the gradient at every layer. With sigma_w^2 = 1/3 a ReLU layer
        keeps 1/6 of the gradient's squared norm, a tanh or linear layer about 1/3, a GELU/SiLU
        layer about 1/12: a plain default-initialized MLP vanishes exponentially with depth even
        though every activation is "safe".
    """
    fix = """
        Initialize the weights for the activation that follows: `nn.init.kaiming_normal_(m.weight,
        nonlinearity="relu")` (He) for ReLU-family layers, `nn.init.xavier_uniform_(m.weight,
        gain=nn.init.calculate_gain("tanh"))` for tanh/sigmoid; for example in the model's
        `__init__`: `for m in self.modules(): if isinstance(m, nn.Linear): nn.init.kaiming_normal_(m.weight)`.
        Or add BatchNorm/LayerNorm after the layers, which makes the gradient independent of the
        weight scale.
    """
    references = [
        "He, Zhang, Ren & Sun 2015, Delving Deep into Rectifiers (He/Kaiming initialization)",
        "Glorot & Bengio 2010 (Xavier initialization)",
        "PyTorch torch/nn/modules/linear.py, Linear.reset_parameters; pytorch/pytorch#57109",
        "Schoenholz et al. 2017, Deep Information Propagation (chi = sigma_w^2 E[phi'^2])",
    ]
    options = {"min-layers": Option(int, 5, "report runs of at least this many default-initialized layers", min=1)}
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class DefaultMLP(nn.Module):
                def __init__(self, depth=20, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    self.act = nn.ReLU()

                def forward(self, x):
                    for layer in self.layers:
                        x = self.act(layer(x))
                    return x
            """,
            line=7,
            note="Twenty ReLU layers with PyTorch's default init: the gradient shrinks ~6x per layer (the estimate "
                 "puts the first layer at 7e-7 of the last).",
        )
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class HeMLP(nn.Module):
                def __init__(self, depth=8, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    self.act = nn.ReLU()
                    for layer in self.layers:
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                        nn.init.zeros_(layer.bias)

                def forward(self, x):
                    for layer in self.layers:
                        x = self.act(layer(x))
                    return x
            """,
            note="He initialization for ReLU layers.",
        ),
        Example(
            """
            import torch.nn as nn


            class NormMLP(nn.Module):
                def __init__(self, depth=8, width=64):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
                    self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(depth)])
                    self.act = nn.ReLU()

                def forward(self, x):
                    for layer, norm in zip(self.layers, self.norms):
                        x = self.act(norm(layer(x)))
                    return x
            """,
            note="Default init, but a LayerNorm after every layer cancels the weight scale.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        init = ctx.init
        if init is None:
            return

        def counts(n: Node) -> bool:
            return n.is_weight_layer and init.is_default(n.module)

        run = ctx.structure.run(counts=counts, resets=is_norm, merge="min")
        if run.length < self.opts["min-layers"]:
            return
        layers = [ctx.graph[i] for i in run.nodes]
        act = following_activation(ctx, layers[0]) or "identity"
        chi = DEFAULT_INIT_CHI.get(act, 1 / 6)
        overall = chi ** (run.length - 1)
        types = sorted({n.module_type or n.kind for n in layers})
        evidence = init.layers[layers[0].module].evidence
        # chi is the backward signal's gain; the forward signal shrinks alike, so the weight
        # gradients (signal x activation) can stay balanced while all of them become tiny.
        msg = (f"{run.length} {'/'.join(types)} layers in a row keep PyTorch's default init "
               f"(U(±1/sqrt(fan_in)), sigma_w^2 = 1/3) with no normalization between them: with {act} each "
               f"keeps ~{chi:.2g} of the backward error signal's squared norm (~{overall:.0e} over the run) "
               f"and the activations shrink alike ({evidence})")
        if act in SATURATING:
            fix = (f"initialize with nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain('{act}')) "
                   "(Xavier), or add normalization between the layers")
        else:
            fix = ("initialize with nn.init.kaiming_normal_(m.weight, nonlinearity='relu') (He), or add "
                   "BatchNorm/LayerNorm between the layers")
        yield self.finding(msg, representative_location(layers), fix)
