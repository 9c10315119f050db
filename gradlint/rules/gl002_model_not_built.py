from __future__ import annotations

import re
import shlex
from typing import Any, Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding


class ModelNotBuilt(Rule):
    code = "GL002"
    name = "model-not-built"
    severity = "warning"
    summary = "A model class in the file could not be built without arguments, so it was not analysed."
    what = """
        Reports each `nn.Module` class of a file that discovery found but could not build: its
        constructor has required parameters, no config object, factory function, module-level
        instance or literal call in the file supplies them, and no other model of the file uses it
        as a building block. The message names the parameters and the exact command that
        analyses the class, to fill in; when the repository calls the class somewhere, it shows
        that call. A class discovery tried to build with a guessed config object or a call it found
        in the file (`GPT(GPTConfig())`, `VGG('VGG11')`) and that failed is reported here too,
        with the error. Weightless helper classes (activations) are skipped without a word.
    """
    why = """
        A linter that skips what it cannot build and exits 0 lets CI pass having checked nothing.
        Naming each skipped class, and the target that would analyse it, keeps the run honest and
        makes the fix one copy-paste.
    """
    fix = """
        Name the class with arguments: any Python expression after `::` is evaluated in the file,
        so config objects work (`gradlint 'model.py::GPT(GPTConfig(n_layer=4))'`); put the target
        under `[tool.gradlint] models` to make it permanent. Or give the constructor's parameters
        defaults, or add a module-level factory without parameters (`def build(): return
        Generator(...)`) that discovery calls.
    """
    references = ["gradlint README, section *Discovery*"]
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class Generator(nn.Module):
                def __init__(self, h):
                    super().__init__()
                    self.fc = nn.Linear(h["width"], h["width"])

                def forward(self, x):
                    return self.fc(x)
            """,
            line=4,
            note="`h` has no default and nothing in the file builds a Generator: GL002 at the class, with the "
                 "command `gradlint 'example.py::Generator(h=...)'` to fill in.",
        )
    ]
    VALID = [
        Example(
            """
            from dataclasses import dataclass

            import torch.nn as nn


            @dataclass
            class GeneratorConfig:
                width: int = 64


            class Generator(nn.Module):
                def __init__(self, config: GeneratorConfig):
                    super().__init__()
                    self.fc = nn.Linear(config.width, config.width)

                def forward(self, x):
                    return self.fc(x)
            """,
            note="The parameter is a config object that builds with no arguments: discovery analyses "
                 "`Generator(GeneratorConfig())`.",
        ),
        Example(
            """
            import torch.nn as nn


            class Generator(nn.Module):
                def __init__(self, width):
                    super().__init__()
                    self.fc = nn.Linear(width, width)

                def forward(self, x):
                    return self.fc(x)


            def build():
                return Generator(64)
            """,
            note="A module-level factory without parameters that returns the model: discovery calls it.",
        ),
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        return ()  # produced by the pipeline from discovery's list, see ``from_unbuilt``

    def from_unbuilt(self, unbuilt: Any, path: str) -> Finding:
        """The finding for one class nothing built (``load.discover.Unbuilt``); ``path`` is the file
        as the user named it."""
        if unbuilt.cls is None:
            return self._nothing(unbuilt, path)
        name = unbuilt.name
        target = suggested_target(unbuilt, path)
        if unbuilt.tried:
            why = f"{unbuilt.tried} failed to build ({unbuilt.error})"
        elif unbuilt.needs:
            words = ", ".join(unbuilt.needs)
            why = f"its constructor needs {words} (no default{'s' if len(unbuilt.needs) > 1 else ''})"
        else:
            why = "it could not be built"
        msg = f"{name} was not analysed: {why}; analyse it with: {command(target)}"
        if unbuilt.examples:
            msg += f" (the repository builds it at {unbuilt.examples[0]})"
        fix = (f"add it under [tool.gradlint] models: {target!r}, with real arguments (any expression of the file "
               f"works, e.g. a config object); or give {name}'s parameters defaults")
        return self.finding(msg, unbuilt.location, fix=fix)


    def _nothing(self, unbuilt: Any, path: str) -> Finding:
        """A file that looks like model code (it builds objects at import, or has functions that
        return something) in which no model was found."""
        parts = []
        if unbuilt.seen:
            parts.append(f"it builds {', '.join(unbuilt.seen)} at import")
        if unbuilt.leads:
            parts.append(f"{', '.join(f + '()' for f in unbuilt.leads)} may return one")
        lead = unbuilt.leads[0] if unbuilt.leads else "EXPRESSION"
        msg = (f"no model analysed in {path}: no nn.Module class, factory or module-level model was found "
               f"({'; '.join(parts)}); name the expression that gives the model: {command(f'{path}::{lead}')}")
        fix = ("name a target whose expression gives the nn.Module (file.py::build, 'file.py::Net(...)', "
               "file.py::model.network), or add it under [tool.gradlint] models")
        return self.finding(msg, unbuilt.location, fix=fix)


def suggested_target(unbuilt: Any, path: str) -> str:
    """``path::Name(...)``: a literal call the repository makes when there is one, else a call
    naming each required parameter with ``...`` to fill in."""
    for example in unbuilt.examples:
        call = example.split(": ", 1)[-1]
        if _is_literal_call(call):
            return f"{path}::{unbuilt.name}{call[call.index('('):]}"
    args = ", ".join(f"{p}=..." for p in unbuilt.needs)
    return f"{path}::{unbuilt.name}({args})"


def _is_literal_call(text: str) -> bool:
    import ast

    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(node, ast.Call):
        return False
    try:
        for a in list(node.args) + [k.value for k in node.keywords]:
            ast.literal_eval(a)
    except ValueError:
        return False
    return not any(k.arg is None for k in node.keywords) and not any(isinstance(a, ast.Starred) for a in node.args)


def command(target: str) -> str:
    """``gradlint 'model.py::Net(h=...)'``, quoted for a POSIX shell the readable way."""
    if re.fullmatch(r"[\w./:-]+", target):
        return f"gradlint {target}"
    if "'" not in target:
        return f"gradlint '{target}'"
    if not re.search(r'["$`\\!]', target):
        return f'gradlint "{target}"'
    return f"gradlint {shlex.quote(target)}"
