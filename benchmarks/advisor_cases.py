"""The accuracy sweeps' MLP and CNN models written out as model files, the way a user writes them
(literal layer constructors, the init in ``__init__``, a plain forward loop), so that
``gradlint --fix`` can rewrite them. Each file builds the same architecture, init and inputs as
its ``accuracy_cases.Case``; ``advisor.py`` checks that the file's estimate matches the case's.
"""

from __future__ import annotations

from typing import Any

ACT = {"sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "relu": "nn.ReLU()", "gelu": "nn.GELU()", "silu": "nn.SiLU()",
       "elu": "nn.ELU()", "leaky_relu": "nn.LeakyReLU(0.1)", "softplus": "nn.Softplus()"}
GAIN = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu"}


def _norm(kind: str, width: str, conv: bool) -> str | None:
    if kind == "none":
        return None
    if conv:
        return {"bn": f"nn.BatchNorm2d({width})", "ln": f"nn.GroupNorm(1, {width})", "gn": f"nn.GroupNorm(8, {width})"}[kind]
    return {"bn": f"nn.BatchNorm1d({width})", "ln": f"nn.LayerNorm({width})", "gn": f"nn.GroupNorm(8, {width})"}[kind]


def _init(init: str, act: str) -> list[str]:
    if init == "default":
        return []
    if init == "he":
        call = ('nn.init.kaiming_normal_(m.weight, nonlinearity="leaky_relu", a=0.1)' if act == "leaky_relu"
                else 'nn.init.kaiming_normal_(m.weight, nonlinearity="relu")')
    elif init == "xavier":
        gain = f'nn.init.calculate_gain("{GAIN[act]}", 0.1)' if act in GAIN else "1.0"
        call = f"nn.init.xavier_normal_(m.weight, gain={gain})"
    else:
        call = "nn.init.normal_(m.weight, std=0.01)"
    return ["        for m in self.modules():",
            "            if isinstance(m, (nn.Linear, nn.Conv2d)):",
            f"                {call}"]


def mlp_source(name: str, tags: dict[str, Any], batch: int) -> str:
    depth, act, init, norm, residual = tags["depth"], tags["act"], tags["init"], tags["norm"], tags["residual"]
    width, d_in = 256, 64
    n0 = _norm(norm, str(width), conv=False)
    lines = [f'"""Accuracy case {name}, written as a model file."""', "", "import torch", "import torch.nn as nn", "", "",
             "class Net(nn.Module):", "    def __init__(self):", "        super().__init__()",
             f"        self.inp = nn.Linear({d_in}, {width})"]
    if n0:
        lines.append(f"        self.norm0 = {n0}")
    lines.append(f"        self.fcs = nn.ModuleList([nn.Linear({width}, {width}) for _ in range({depth - 2})])")
    if n0:
        lines.append(f"        self.norms = nn.ModuleList([{n0} for _ in range({depth - 2})])")
    lines += [f"        self.act = {ACT[act]}", f"        self.head = nn.Linear({width}, 10)"]
    lines += _init(init, act)
    body = "self.act(norm(fc(x)))" if n0 else "self.act(fc(x))"
    update = f"x = x + {body}" if residual else f"x = {body}"
    lines += ["", "    def forward(self, x):",
              f"        x = self.act({'self.norm0(' if n0 else ''}self.inp(x){')' if n0 else ''})",
              f"        for {'fc, norm in zip(self.fcs, self.norms)' if n0 else 'fc in self.fcs'}:",
              f"            {update}",
              "        return self.head(x)", "", "",
              "def example_inputs():", f"    return (torch.randn({batch}, {d_in}),)", ""]
    return "\n".join(lines)


def cnn_source(name: str, tags: dict[str, Any], batch: int = 16, side: int = 16, pool: str = "avg") -> str:
    depth, act, init, norm, residual = tags["depth"], tags["act"], tags["init"], tags["norm"], tags["residual"]
    ch = 32
    n = depth - 2
    down = sorted({n // 3, (2 * n) // 3}) if n >= 3 else []
    n0 = _norm(norm, str(ch), conv=True)
    pool_cls = "nn.AdaptiveAvgPool2d(1)" if pool == "avg" else "nn.AdaptiveMaxPool2d(1)"
    lines = [f'"""Accuracy case {name}, written as a model file."""', "", "import torch", "import torch.nn as nn",
             "import torch.nn.functional as F", "", "",
             "class Net(nn.Module):", "    def __init__(self):", "        super().__init__()",
             f"        self.stem = nn.Conv2d(3, {ch}, 3, padding=1)"]
    if n0:
        lines.append(f"        self.norm0 = {n0}")
    lines.append(f"        self.convs = nn.ModuleList([nn.Conv2d({ch}, {ch}, 3, padding=1) for _ in range({n})])")
    if n0:
        lines.append(f"        self.norms = nn.ModuleList([{n0} for _ in range({n})])")
    lines += [f"        self.act = {ACT[act]}", f"        self.pool = {pool_cls}", f"        self.head = nn.Linear({ch}, 10)",
              f"        self.down = {set(down) if down else 'set()'}"]
    lines += _init(init, act)
    body = "self.act(norm(conv(x)))" if n0 else "self.act(conv(x))"
    update = f"x = x + {body}" if residual else f"x = {body}"
    loop = "i, (conv, norm) in enumerate(zip(self.convs, self.norms))" if n0 else "i, conv in enumerate(self.convs)"
    lines += ["", "    def forward(self, x):",
              f"        x = self.act({'self.norm0(' if n0 else ''}self.stem(x){')' if n0 else ''})",
              f"        for {loop}:",
              f"            {update}",
              "            if i in self.down:",
              "                x = F.avg_pool2d(x, 2)",
              "        return self.head(torch.flatten(self.pool(x), 1))", "", "",
              "def example_inputs():", f"    return (torch.randn({batch}, 3, {side}, {side}),)", ""]
    return "\n".join(lines)


def source_for(case: Any) -> str | None:
    """The model file of an accuracy case, or None for families written differently."""
    name = case.name
    if case.family == "mlp":
        last = name.rsplit("-", 1)[-1]
        batch = int(last[1:]) if last.startswith("b") and last[1:].isdigit() else 64
        return mlp_source(name, case.tags, batch)
    if case.family == "cnn" and not name.endswith("-strided"):
        return cnn_source(name, case.tags, pool="max" if name.endswith("-maxpool") else "avg")
    return None
