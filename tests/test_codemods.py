"""Every codemod of ``gradlint/fix``: a golden before/after pair, idempotence (a second run changes
nothing), the rewritten file imports, builds and runs a forward pass, and the patterns that cannot be
rewritten safely are refused with instructions instead of a broken edit."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

from gradlint.fix.codemods import CannotRewrite, apply_change


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def site(text: str, needle: str, nth: int = 0) -> dict:
    """The site of the call starting at the ``nth`` occurrence of ``needle``: 1-based line and byte column."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    col = len(text[text.rfind("\n", 0, start) + 1:start].encode("utf-8")) + 1
    return {"line": line, "column": col}


def check(tmp_path: Path, before: str, changes: list[dict], after: str, cls: str = "Net", build: str | None = None) -> None:
    """Golden pair + idempotence + the rewritten file builds and runs."""
    path = tmp_path / "model.py"
    path.write_text(before, encoding="utf-8")
    text = before
    for ch in changes:
        text = apply_change(text, _at(ch, path), str(path), note="gradlint --fix (GL201): test")
    assert text == after
    again = text
    for ch in changes:
        again = apply_change(again, _at(ch, path), str(path), note="gradlint --fix (GL201): test")
    assert again == text, "a second run changed the file again"
    path.write_text(text, encoding="utf-8")
    model = _build(path, build or cls)
    import torch

    x = torch.randn(4, *getattr(model, "INPUT", (16,)))
    assert torch.isfinite(model(x)).all()


def _at(change: dict, path: Path) -> dict:
    ch = dict(change)
    if "sites" in ch:
        ch["sites"] = [dict(s, path=str(path)) for s in ch["sites"]]
    if "host" in ch:
        ch["host"] = dict(ch["host"], path=str(path))
    if "path" in ch:
        ch["path"] = str(path)
    return ch


def _build(path: Path, name: str):
    import torch

    torch.manual_seed(0)
    spec = importlib.util.spec_from_file_location(f"rewritten_{abs(hash(str(path)))}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)()


HE = {"op": "init", "host": {"class": "Net"}, "types": ["Linear"], "heads": [], "law": "kaiming_normal",
      "gain": 1.4142, "nonlinearity": "relu", "slope": 0.0}


# -- init ------------------------------------------------------------------------------------------------

def test_init_method_called_at_the_end_of_init(tmp_path):
    before = src('''
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth=4):
                super().__init__()
                # the body keeps its comments
                self.layers = nn.ModuleList([nn.Linear(16, 16) for _ in range(depth)])

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x).relu()  # as written
                return x
        ''')
    after = src('''
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth=4):
                super().__init__()
                # the body keeps its comments
                self.layers = nn.ModuleList([nn.Linear(16, 16) for _ in range(depth)])
                self._gradlint_init()

            def _gradlint_init(self) -> None:
                # gradlint --fix (GL201): test
                for m in self.modules():
                    if isinstance(m, (nn.Linear,)):
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x).relu()  # as written
                return x
        ''')
    check(tmp_path, before, [HE], after)


def test_init_gives_heads_unit_gain_and_replaces_its_own_earlier_method(tmp_path):
    before = src('''
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid())
                self.head = nn.Linear(16, 3)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.normal_(m.weight, std=0.01)
                self._gradlint_init()

            def _gradlint_init(self) -> None:
                # an older fix
                for m in self.modules():
                    pass

            def forward(self, x):
                return self.head(self.body(x))
        ''')
    change = dict(HE, law="scaled_normal", gain=3.2, nonlinearity="sigmoid", heads=["head"])
    after = src('''
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid())
                self.head = nn.Linear(16, 3)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.normal_(m.weight, std=0.01)
                self._gradlint_init()

            def _gradlint_init(self) -> None:
                # gradlint --fix (GL201): test
                for name, m in self.named_modules():
                    if isinstance(m, (nn.Linear,)):
                        if name in ('head',):
                            nn.init.normal_(m.weight, std=1 / m.weight[0].numel() ** 0.5)
                        else:
                            nn.init.normal_(m.weight, std=3.2 / m.weight[0].numel() ** 0.5)
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)

            def forward(self, x):
                return self.head(self.body(x))
        ''')
    check(tmp_path, before, [change], after)
    model = _build(tmp_path / "model.py", "Net")
    assert abs(float(model.body[0].weight.detach().std()) - 3.2 / 4) < 0.1  # the fix's init ran last
    assert abs(float(model.head.weight.detach().std()) - 1 / 4) < 0.08  # the output layer: unit gain


def test_init_wraps_a_factory_functions_return(tmp_path):
    before = src('''
        import torch
        import torch.nn as nn


        def build(depth=6):
            layers = []
            for _ in range(depth):
                layers += [nn.Linear(16, 16), nn.ReLU()]
            return nn.Sequential(*layers)
        ''')
    after = src('''
        import torch
        import torch.nn as nn


        def build(depth=6):
            layers = []
            for _ in range(depth):
                layers += [nn.Linear(16, 16), nn.ReLU()]
            return _gradlint_init(nn.Sequential(*layers))


        def _gradlint_init(model):
            # gradlint --fix (GL201): test
            for m in model.modules():
                if isinstance(m, (nn.Linear,)):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
            return model
        ''')
    check(tmp_path, before, [dict(HE, host={"function": "build"})], after, build="build")


def test_init_adds_a_constructor_to_a_class_without_one(tmp_path):
    before = src('''
        import torch
        import torch.nn as nn


        class Base(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(16, 16)

            def forward(self, x):
                return self.fc(x)


        class Net(Base):
            """A subclass that only renames."""
        ''')
    after = src('''
        import torch
        import torch.nn as nn


        class Base(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(16, 16)

            def forward(self, x):
                return self.fc(x)


        class Net(Base):
            """A subclass that only renames."""
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self._gradlint_init()

            def _gradlint_init(self) -> None:
                # gradlint --fix (GL201): test
                for m in self.modules():
                    if isinstance(m, (nn.Linear,)):
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)
        ''')
    check(tmp_path, before, [HE], after)


def test_init_for_a_library_model_built_by_a_factory_imports_torch(tmp_path):
    before = src('''
        """Models from a library: the file never imports torch itself."""
        from torchlib import make_mlp


        def build():
            return make_mlp(depth=6)
        ''')
    (tmp_path / "torchlib.py").write_text(src('''
        import torch.nn as nn


        def make_mlp(depth):
            return nn.Sequential(*[nn.Linear(16, 16) for _ in range(depth)])
        '''))
    after = src('''
        """Models from a library: the file never imports torch itself."""
        from torchlib import make_mlp
        import torch


        def build():
            return _gradlint_init(make_mlp(depth=6))


        def _gradlint_init(model):
            # gradlint --fix (GL201): test
            for m in model.modules():
                if isinstance(m, (torch.nn.Linear,)):
                    torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        torch.nn.init.zeros_(m.bias)
            return model
        ''')
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        check(tmp_path, before, [dict(HE, host={"function": "build"})], after, build="build")
    finally:
        sys.path.remove(str(tmp_path))


def test_init_refuses_a_file_that_rebinds_torch(tmp_path):
    with pytest.raises(CannotRewrite, match="binds the name `torch`"):
        apply_change("torch = None\n\n\nclass Net:\n    pass\n", _at(HE, tmp_path / "m.py"), "m.py")


# -- activation swap ------------------------------------------------------------------------------------

SWAP_BEFORE = src('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(16, 16) for _ in range(4))
            self.act = nn.Sigmoid()

        def forward(self, x):
            x = self.act(self.fc1(x))
            x = torch.sigmoid(self.fc2(x))
            x = F.tanh(self.fc3(x))
            return self.fc4(x).sigmoid()
    ''')


def test_swap_activation_at_modules_functions_and_methods(tmp_path):
    sites = [dict(site(SWAP_BEFORE, "nn.Sigmoid()"), **{"from": "sigmoid"}),
             dict(site(SWAP_BEFORE, "torch.sigmoid("), **{"from": "sigmoid"}),
             dict(site(SWAP_BEFORE, "F.tanh("), **{"from": "tanh"}),
             dict(site(SWAP_BEFORE, "self.fc4(x).sigmoid()"), **{"from": "sigmoid"})]
    after = SWAP_BEFORE.replace("nn.Sigmoid()", "nn.ReLU()").replace("torch.sigmoid(", "torch.relu(") \
        .replace("F.tanh(", "F.relu(").replace(".sigmoid()", ".relu()")
    check(tmp_path, SWAP_BEFORE, [{"op": "swap_activation", "to": "relu", "sites": sites}], after)


@pytest.mark.parametrize("call, why", [
    ("ACTIVATIONS[name]()", "lookup table"),
    ("getattr(nn, name)()", "computed"),
    ("make_act()", "a name gradlint cannot follow"),
])
def test_swap_activation_refuses_what_it_cannot_follow(tmp_path, call, why):
    text = src(f'''
        import torch.nn as nn

        ACTIVATIONS = {{"sigmoid": nn.Sigmoid}}
        make_act = nn.Sigmoid


        class Net(nn.Module):
            def __init__(self, name="sigmoid"):
                super().__init__()
                self.act = {call}
        ''')
    change = {"op": "swap_activation", "to": "relu",
              "sites": [dict(site(text, call), path=str(tmp_path / "m.py"), **{"from": "sigmoid"})]}
    with pytest.raises(CannotRewrite, match=why) as e:
        apply_change(text, change, str(tmp_path / "m.py"))
    assert "nn.ReLU()" in str(e.value)  # says what to write instead


# -- normalization ------------------------------------------------------------------------------------

def test_insert_norm_wraps_layers_built_in_a_comprehension(tmp_path):
    before = src('''
        import torch.nn as nn


        class Net(nn.Module):
            INPUT = (3, 8, 8)

            def __init__(self, width=16):
                super().__init__()
                self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else width, width, 3, padding=1) for i in range(3)])
                self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(2)])

            def forward(self, x):
                for conv in self.convs:
                    x = conv(x).relu()
                x = x.mean((2, 3))
                for fc in self.fcs:
                    x = fc(x).tanh()
                return x
        ''')
    sites = [dict(site(before, "nn.Conv2d("), norm="BatchNorm2d", layer="Conv2d"),
             dict(site(before, "nn.Linear("), norm="LayerNorm", layer="Linear")]
    after = before.replace("nn.Conv2d(3 if i == 0 else width, width, 3, padding=1)",
                           "nn.Sequential(nn.Conv2d(3 if i == 0 else width, width, 3, padding=1), nn.BatchNorm2d(width))") \
        .replace("nn.Linear(width, width)", "nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width))")
    check(tmp_path, before, [{"op": "insert_norm", "sites": sites}], after)


def test_insert_norm_refuses_when_the_layer_is_read_elsewhere(tmp_path):
    text = src('''
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(16, 16)
                nn.init.orthogonal_(self.fc.weight)
        ''')
    change = {"op": "insert_norm", "sites": [dict(site(text, "nn.Linear("), path=str(tmp_path / "m.py"),
                                                  norm="LayerNorm", layer="Linear")]}
    with pytest.raises(CannotRewrite, match=r"self\.fc\.weight"):
        apply_change(text, change, str(tmp_path / "m.py"))


def test_swap_norm_keeps_the_size_and_eps(tmp_path):
    before = src('''
        import torch.nn as nn


        class Net(nn.Module):
            INPUT = (4, 6, 6)

            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 8, 3, padding=1)
                self.bn = nn.BatchNorm2d(8, momentum=0.01)
                self.fc = nn.Linear(8, 16)
                self.ln = nn.LayerNorm(16, eps=1e-6)

            def forward(self, x):
                x = self.bn(self.conv(x)).mean((2, 3))
                return self.ln(self.fc(x))
        ''')
    sites = [dict(site(before, "nn.BatchNorm2d("), to="GroupNorm", **{"from": "BatchNorm2d"}),
             dict(site(before, "nn.LayerNorm("), to="BatchNorm1d", **{"from": "LayerNorm"})]
    after = before.replace("nn.BatchNorm2d(8, momentum=0.01)", "nn.GroupNorm(1, 8)") \
        .replace("nn.LayerNorm(16, eps=1e-6)", "nn.BatchNorm1d(16, eps=1e-6)")
    check(tmp_path, before, [{"op": "swap_norm", "sites": sites}], after)


# -- residual ------------------------------------------------------------------------------------------

def test_residual_around_a_block_class(tmp_path):
    before = src('''
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, w=16):
                super().__init__()
                self.fc = nn.Linear(w, w)
                self.act = nn.Tanh()

            def forward(self, x):
                return self.act(self.fc(x))


        class Reassigning(nn.Module):
            def __init__(self, w=16):
                super().__init__()
                self.fc = nn.Linear(w, w)

            def forward(self, x):
                """Docstring first."""
                x = self.fc(x)
                return x.tanh()


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.Sequential(Block(), Reassigning(), Block())

            def forward(self, x):
                return self.blocks(x)
        ''')
    changes = [{"op": "residual", "form": "block", "class": "Block", "path": ""},
               {"op": "residual", "form": "block", "class": "Reassigning", "path": ""}]
    after = before.replace("return self.act(self.fc(x))", "return x + self.act(self.fc(x))") \
        .replace('"""Docstring first."""\n', '"""Docstring first."""\n        identity = x\n') \
        .replace("return x.tanh()", "return identity + x.tanh()")
    check(tmp_path, before, changes, after)


def test_residual_in_the_loop_over_a_module_list(tmp_path):
    before = src('''
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, depth=4):
                super().__init__()
                self.fcs = nn.ModuleList([nn.Linear(16, 16) for _ in range(depth)])
                self.norms = nn.ModuleList([nn.LayerNorm(16) for _ in range(depth)])

            def forward(self, x):
                for i, (fc, norm) in enumerate(zip(self.fcs, self.norms)):
                    x = fc(norm(x)).relu()  # pre-norm
                    if i == 1:
                        x = x * 0.5
                return x
        ''')
    after = before.replace("x = fc(norm(x)).relu()", "x = x + fc(norm(x)).relu()")
    check(tmp_path, before, [{"op": "residual", "form": "loop", "class": "Net", "attr": "fcs", "path": ""}], after)


def test_residual_loop_with_two_updates_is_refused(tmp_path):
    text = src('''
        import torch.nn as nn


        class Net(nn.Module):
            def forward(self, x):
                for fc in self.fcs:
                    x = fc(x)
                    x = x.relu()
                return x
        ''')
    with pytest.raises(CannotRewrite, match="x = x \\+ f\\(x\\)"):
        apply_change(text, {"op": "residual", "form": "loop", "class": "Net", "attr": "fcs", "path": "m.py"}, "m.py")


def test_generated_files_are_never_rewritten(tmp_path):
    text = "# @generated by a code generator. DO NOT EDIT.\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n"
    with pytest.raises(CannotRewrite, match="generated"):
        apply_change(text, _at(HE, tmp_path / "m.py"), "m.py")
