from __future__ import annotations

from typing import Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding


class OpaqueModule(Rule):
    code = "GL004"
    name = "opaque-module"
    severity = "warning"
    requires = "graph"
    summary = "A submodule gradlint cannot see into (a torch.jit.script module it could not follow): its layers are not analysed."
    what = """
        gradlint captures a `torch.jit.script`-ed submodule from its TorchScript graph: every
        `aten::` op of its inlined graph becomes a node, as the same code in Python would, and its
        weight layers are analysed like any other. When the graph holds something the walk cannot
        replay (a `@torch.jit.ignore` Python call, a branch on a tensor's value on the meta device,
        an op TorchScript alone knows), the module is kept as one opaque node that passes its
        input through unchanged. This rule names it, says why, and how many weight tensors it
        hides, so that "All checks passed" never means "not looked at".
    """
    why = """
        The estimate treats the opaque module as the identity: if the module shrinks or grows the
        gradient, or holds most of the model's layers, the findings (or their absence) say nothing
        about it.
    """
    fix = """
        Analyse the Python module instead: script it after building (`torch.jit.script(model)` in
        the training script, not in `__init__`), or build the unscripted model for gradlint with a
        flag (`file.py::Net(script=False)`). Or remove the construct the message names.
    """
    references = [
        "PyTorch: TorchScript (torch.jit.script, torch.jit.ignore)",
        "docs/estimator.md, \"Unhandled ops\"",
    ]
    INVALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 32)

                @torch.jit.ignore
                def log(self, x: torch.Tensor) -> torch.Tensor:
                    return x

                def forward(self, x):
                    return torch.tanh(self.fc(self.log(x)))


            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.inp = nn.Linear(16, 32)
                    self.block = torch.jit.script(Block())
                    self.head = nn.Linear(32, 4)

                def forward(self, x):
                    return self.head(self.block(self.inp(x)))


            def example_inputs():
                return (torch.randn(8, 16),)
            """,
            line=22,
            note="The scripted block calls a `@torch.jit.ignore` Python method, which TorchScript runs outside its "
                 "graph: gradlint cannot follow it and says so.",
        ),
    ]
    VALID = [
        Example(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 32)

                def forward(self, x):
                    return torch.tanh(self.fc(x))


            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.inp = nn.Linear(16, 32)
                    self.block = torch.jit.script(Block())
                    self.head = nn.Linear(32, 4)

                def forward(self, x):
                    return self.head(self.block(self.inp(x)))


            def example_inputs():
                return (torch.randn(8, 16),)
            """,
            note="A scripted block of plain ops is captured from its TorchScript graph: `block.fc` is a weight layer.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        seen: set[str] = set()
        for node in ctx.graph:
            why = node.attrs.get("opaque")
            if not why or (node.module or "") in seen:
                continue
            seen.add(node.module or "")
            hidden = node.attrs.get("hidden_weights") or 0
            what = f"{hidden} weight tensor{'s' if hidden != 1 else ''}" if hidden else "no weight tensor"
            yield self.finding(f"{node.module} ({node.module_type}) is not analysed: {why}; it is treated as the "
                               f"identity and its {what} {'are' if hidden != 1 else 'is'} not part of the estimate",
                               node.location)
