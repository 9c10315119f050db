"""Does a weight layer keep PyTorch's default initialization? (GL104's evidence)

Linear/Conv default to ``kaiming_uniform_(a=sqrt(5))``: U(+-1/sqrt(fan_in)), variance
1/(3 fan_in), i.e. sigma_w^2 = 1/3 — a gradient shrink of ~1/6 per ReLU layer. We decide from
two independent kinds of evidence, never one alone:

* **weights** (when materialized): every entry within +-1/sqrt(fan_in) and the variance within
  sampling noise of 1/(3 fan_in);
* **code**: which parameters init code touched while the model was built
  (``load.init_recorder.InitRecorder``), and the init code in the model's source files
  (``nn.init.*`` calls, ``reset_parameters``/``_init_weights`` definitions, ``.apply(...)``),
  found with the standard library's ``ast`` (about 1 ms a file).

Materialized: default = weights look default AND no init code touched the parameter AND (the
source has no init code, or init code demonstrably ran and skipped this layer).
Meta device (weights unknown): default = no init code touched it AND the source has no init code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ..ir.source import Location

# Calls that (re)initialize weights, by the last name in the call.
INIT_CALLS = frozenset({
    "normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "orthogonal_", "zeros_", "ones_", "constant_", "eye_", "dirac_", "sparse_",
    "fill_", "zero_", "copy_", "lecun_normal_", "variance_scaling_", "init_weights",
})
# Method definitions that customize initialization.
INIT_DEFS = frozenset({"reset_parameters", "_reset_parameters", "_init_weights", "init_weights",
                       "initialize_weights", "_initialize_weights", "weights_init", "init_params",
                       "_init_params"})



@lru_cache(maxsize=512)
def _init_sites_cached(path: str, mtime_ns: int, size: int) -> tuple[tuple[int, int, str], ...]:
    import ast

    from ..load.importer import source_bytes

    try:
        tree = ast.parse(source_bytes(path))
    except (SyntaxError, ValueError, OSError):
        return ()
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in INIT_CALLS or (name == "apply" and node.args):
                sites.append((node.lineno, node.col_offset + 1, name))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in INIT_DEFS:
            sites.append((node.lineno, node.col_offset + 1, f"def {node.name}"))
    return tuple(sorted(sites))


def init_sites(path: str) -> tuple[tuple[int, int, str], ...]:
    """(line, column, what) of every weight-initialization call or method in the file."""
    try:
        st = Path(path).stat()
    except OSError:
        return ()
    return _init_sites_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@dataclass
class LayerInit:
    status: str  # default | custom | unknown
    evidence: str


@dataclass
class InitReport:
    layers: dict[str, LayerInit] = field(default_factory=dict)  # by module qualified name
    source_init_sites: list[Location] = field(default_factory=list)
    saw_custom_init: bool = False

    def is_default(self, module: str | None) -> bool:
        info = self.layers.get(module or "")
        return info is not None and info.status == "default"


def weights_look_default(weight: Any) -> tuple[bool, str]:
    """U(+-1/sqrt(fan_in)) with variance 1/(3 fan_in), within sampling noise."""
    import torch

    with torch.no_grad():
        w = weight.detach().float()
        if w.dim() < 2 or w.numel() == 0:
            return False, "no weight matrix"
        fan_in = w.size(1) * (w[0][0].numel() if w.dim() > 2 else 1)
        bound = 1.0 / math.sqrt(fan_in)
        n = w.numel()
        var = float(w.var(unbiased=False)) + float(w.mean()) ** 2
        wmax = float(w.abs().max())
    ratio = var / (bound * bound / 3.0)
    # the sample variance of a uniform has relative std sqrt(0.8/n); allow 5 sigma (and 10%)
    tol = max(0.1, 5.0 * math.sqrt(0.8 / n))
    inside = wmax <= bound * (1 + 1e-5)
    fills = n < 50 or wmax >= bound * (1 - 20.0 / n) * 0.9
    ok = inside and fills and abs(ratio - 1.0) <= tol
    return ok, f"Var(W) = {ratio:.2f} x 1/(3*fan_in), |W| <= {wmax / bound:.2f}/sqrt(fan_in)"


def check_init(graph: Any, built: Any, touched: set[str], saw_custom_init: bool,
               find_source_sites: Callable[[], list[Location]]) -> InitReport:
    """Classify each Linear/Conv-like weight layer of the graph.

    ``find_source_sites`` scans the source (libcst, ~30 ms a file) and is only called when a
    layer's weights leave the question open."""
    report = InitReport(saw_custom_init=saw_custom_init)
    modules = dict(built.model.named_modules())
    scanned: list[list[Location]] = []

    def source_sites() -> list[Location]:
        if not scanned:
            scanned.append(find_source_sites())
            report.source_init_sites = list(scanned[0])
        return scanned[0]

    for node in graph.weight_layers():
        mod = modules.get(node.module or "")
        if mod is None or not has_default_init(mod):
            continue
        w = getattr(mod, "weight", None)
        if w is None:
            continue
        name = node.module
        wname = node.params.get("weight", f"{name}.weight")
        if wname in touched:
            report.layers[name] = LayerInit("custom", "initialization code touched its weight")
            continue
        if built.materialized:
            ok, stats = weights_look_default(w)
            if not ok:
                report.layers[name] = LayerInit("custom", stats)
                continue
            sites = source_sites()
            where = ", ".join(f"{loc.path}:{loc.line}" for loc in sites[:3])
            if sites and not saw_custom_init:
                report.layers[name] = LayerInit("unknown", f"{stats}, but the source has init code ({where}) that did not run while building")
            else:
                why = f"init code at {where} did not touch it" if sites else "no init code in the model's source"
                report.layers[name] = LayerInit("default", f"{stats}; {why}")
        else:
            sites = source_sites()
            where = ", ".join(f"{loc.path}:{loc.line}" for loc in sites[:3])
            if sites:
                report.layers[name] = LayerInit("unknown", f"not materialized; the source has init code ({where})")
            else:
                report.layers[name] = LayerInit("default", "not materialized; no init code in the model's source or run while building")
    return report


def has_default_init(mod: Any) -> bool:
    """Linear/Conv/Bilinear whose class keeps torch's reset_parameters (kaiming_uniform_(a=sqrt(5)))."""
    import torch.nn as nn

    defaults = (nn.Linear.reset_parameters, nn.modules.conv._ConvNd.reset_parameters, nn.Bilinear.reset_parameters)
    return isinstance(mod, (nn.Linear, nn.modules.conv._ConvNd, nn.Bilinear)) and type(mod).reset_parameters in defaults


def source_init_sites(files: list[str]) -> list[Location]:
    """Init code (libcst) in the files defining the model's classes."""
    from ..ir.source import display_path
    from .default_init import init_sites

    sites = []
    for f in files:
        for line, col, _what in init_sites(f):
            sites.append(Location(display_path(f), line, col))
    return sites


def model_class_files(model: Any) -> list[str]:
    """Files defining the classes of the model and its submodules (torch's own excepted)."""
    import inspect

    files: list[str] = []
    for m in model.modules():
        cls = type(m)
        if cls.__module__.startswith("torch."):
            continue
        try:
            f = inspect.getsourcefile(cls)
        except (TypeError, OSError):
            continue
        if f and f not in files:
            files.append(f)
    return files
