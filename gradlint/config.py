"""Configuration: ``[tool.gradlint]`` in the nearest pyproject.toml, then CLI flags on top.

Every key is declared once below with its type, so a wrong value names the key and the type it
expected. No torch here.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .ir import dtypes as _dtypes
from .ir.verdict import Thresholds


class ConfigError(ValueError):
    """A bad configuration value or CLI option (exit code 2)."""


# ``long:8,35``: the dtype names an input shape may start with, and the torch dtype each means.
INPUT_DTYPES = {
    "float": "float32", "float32": "float32", "double": "float64", "float64": "float64", "half": "float16",
    "float16": "float16", "bfloat16": "bfloat16", "long": "int64", "int64": "int64", "int": "int32",
    "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}


@dataclass(frozen=True)
class InputShape:
    """One forward input: ``8,3,32,32`` (float, or token ids when it feeds an embedding) or
    ``long:8,35`` (a dtype first)."""

    shape: tuple[int, ...]
    dtype: str | None = None  # a torch dtype name; None: float, or token ids for an embedding

    def __str__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.dtype}:{dims}" if self.dtype else dims


def parse_input_shape(value: Any, where: str) -> InputShape:
    """``"long:8,35"``, ``"8x3x32x32"`` or ``[8, 3, 32, 32]`` -> InputShape; ConfigError naming ``where``."""
    example = "e.g. 8,3,32,32 or long:8,35"
    dtype = None
    if isinstance(value, str):
        text = value.strip()
        if ":" in text:
            name, _, text = text.partition(":")
            dtype = INPUT_DTYPES.get(name.strip().lower())
            if dtype is None:
                raise ConfigError(f"{where} {value!r}: unknown dtype {name.strip()!r}; expected one of "
                                  f"{', '.join(sorted(INPUT_DTYPES))}")
        try:
            dims = [int(x) for x in re.split(r"[,x]", text)]
        except ValueError:
            raise ConfigError(f"{where} {value!r}: expected positive integers, {example}") from None
    elif isinstance(value, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        dims = list(value)
    else:
        raise ConfigError(f"{where}: expected a shape like [8, 3, 32, 32] or \"long:8,35\", got {value!r}")
    if not dims or any(d <= 0 for d in dims):
        raise ConfigError(f"{where} {value!r}: expected positive integers, {example}")
    return InputShape(tuple(dims), dtype)


def parse_input_shapes(value: Any, where: str) -> list[InputShape]:
    """The ``input-shape`` setting: one shape (``[8, 3, 32, 32]``, ``"long:8,35"``) or a list of them,
    one per positional input of the forward (``["8,80", "8,80"]``, ``[[8, 80], [8, 80]]``)."""
    if isinstance(value, list) and value and all(isinstance(v, (list, str)) for v in value):
        return [parse_input_shape(v, where) for v in value]
    return [parse_input_shape(value, where)]
DEFAULT_MEMORY_LIMIT = 8 << 30
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: Any) -> int | None:
    """``"8GiB"``, ``"512MiB"``, ``"16G"``, a number of bytes, or 0 / ``"none"`` for no cap (None).
    Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(value)
        return value or None
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip().lower().replace(" ", "")
    if text in ("0", "none", "off"):
        return None
    number = text.rstrip("kmgtib")
    unit = text[len(number):].removesuffix("ib").removesuffix("b")
    if unit not in _UNITS or not number:
        raise ValueError(value)
    size = float(number) * _UNITS[unit]
    if not size > 0 or size != size or size == float("inf"):
        raise ValueError(value)
    return int(size)


def format_size(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def _is_size(v: Any) -> bool:
    try:
        parse_size(v)
    except ValueError:
        return False
    return True


@dataclass
class Config:
    select: list[str] | None = None  # None: the default set
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    input_shape: list[InputShape] | None = None  # one per positional input of the forward
    vanishing_threshold: float = 1e-3
    exploding_threshold: float = 1e4
    materialize_limit: int = 50_000_000  # parameters; above it, analyse on the meta device only
    timeout: float = 120.0  # seconds per model (load + build + capture + analysis)
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT  # bytes of address space per analysis worker; None: no cap
    verify: bool = False
    device: str = "cpu"
    batch_size: int | None = None
    seed: int = 0
    loss: str | None = None  # name of a loss function in the model file, for --verify
    dtype: str | None = None  # float32 | float16 | bfloat16: the range GL204 checks (None: the model's own)
    depth: int | None = None  # --depth K: verify a copy with K of the repeated blocks
    shard_units: list[str] | None = None  # under torchrun: FSDP2 units (class names / name patterns)
    plot: str | None = None  # --plot FILE.png (verify; matplotlib extra)
    tensorboard: str | None = None  # --tensorboard DIR (verify; tensorboard extra)
    chart: bool = False  # --chart: gradient-vs-depth chart in the terminal
    advise: bool = True  # estimate candidate fixes for vanishing/exploding models (findings[].fixes)
    structural: str = "evidence"  # GL1xx: "evidence" (warn only when the gradients say so) or "always"
    cache: bool = True
    cache_dir: str = ".gradlint_cache"
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-rule options
    root: Path | None = None  # folder of the pyproject.toml the config came from
    source: str | None = None  # that file, for error messages

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.vanishing_threshold, self.exploding_threshold)

    def rule_options(self, code: str, name: str) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        opts.update(self.rules.get(name, {}))
        opts.update(self.rules.get(code, {}))
        return opts


# key in pyproject -> (attribute, expected type description, validator)
def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


KEYS: dict[str, tuple[str, str, Any]] = {
    "select": ("select", "a list of rule codes or prefixes", _is_str_list),
    "extend-select": ("extend_select", "a list of rule codes or prefixes", _is_str_list),
    "ignore": ("ignore", "a list of rule codes or prefixes", _is_str_list),
    "per-file-ignores": ("per_file_ignores", "a table mapping glob patterns to lists of codes",
                         lambda v: isinstance(v, dict) and all(_is_str_list(x) for x in v.values())),
    "exclude": ("exclude", "a list of glob patterns", _is_str_list),
    "models": ("models", "a list of targets like 'model.py::Net(depth=4)'", _is_str_list),
    "input-shape": ("input_shape", "a shape like [8, 3, 32, 32] or \"long:8,35\", or a list of them", lambda v: True),
    "vanishing-threshold": ("vanishing_threshold", "a positive number", lambda v: _is_number(v) and v > 0),
    "exploding-threshold": ("exploding_threshold", "a positive number", lambda v: _is_number(v) and v > 0),
    "materialize-limit": ("materialize_limit", "a non-negative integer (parameters)",
                          lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "timeout": ("timeout", "a positive number of seconds", lambda v: _is_number(v) and 0 < v < float("inf")),
    "memory-limit": ("memory_limit", "a size like \"8GiB\" or \"512MiB\" (0 or \"none\": no cap)", _is_size),
    "verify": ("verify", "true or false", lambda v: isinstance(v, bool)),
    "device": ("device", "'cpu', 'cuda' or 'auto'", lambda v: isinstance(v, str) and v.split(":")[0] in ("cpu", "cuda", "auto")),
    "batch-size": ("batch_size", "a positive integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
    "seed": ("seed", "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "loss": ("loss", "the name of a function in the model file", lambda v: isinstance(v, str)),
    "dtype": ("dtype", "'float32', 'float16' or 'bfloat16'", lambda v: isinstance(v, str) and _dtypes.normalize(v) in _dtypes.CHOICES),
    "depth": ("depth", "a positive integer (repeated blocks to keep)",
              lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
    "shard-units": ("shard_units", "a list of module class names or qualified-name patterns", _is_str_list),
    "cache": ("cache", "true or false", lambda v: isinstance(v, bool)),
    "advise": ("advise", "true or false", lambda v: isinstance(v, bool)),
    "structural": ("structural", "'evidence' or 'always'", lambda v: v in ("evidence", "always")),
    "cache-dir": ("cache_dir", "a folder path", lambda v: isinstance(v, str)),
    "rules": ("rules", "a table of per-rule option tables", lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values())),
}


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has a [tool.gradlint] table,
    else the nearest pyproject.toml at all."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    nearest = None
    for d in [folder, *folder.parents]:
        p = d / "pyproject.toml"
        if p.is_file():
            if nearest is None:
                nearest = p
            try:
                if "gradlint" in tomllib.loads(p.read_text(encoding="utf-8", errors="replace")).get("tool", {}):
                    return p
            except tomllib.TOMLDecodeError:
                return p  # a broken file is reported, not skipped
    return nearest


def load_config(pyproject: Path | None) -> Config:
    cfg = Config()
    if pyproject is None:
        return cfg
    cfg.root = pyproject.parent
    cfg.source = str(pyproject)
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{pyproject}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{pyproject}: invalid TOML: {e}") from None
    table = data.get("tool", {}).get("gradlint")
    if table is None:
        return cfg
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.gradlint] must be a table")
    apply_table(cfg, table, f"{pyproject}: [tool.gradlint]")
    return cfg


def apply_table(cfg: Config, table: dict[str, Any], where: str) -> None:
    for key, value in table.items():
        spec = KEYS.get(key)
        if spec is None:
            close = [k for k in KEYS if k.replace("-", "") == key.replace("-", "").replace("_", "")]
            hint = f" (did you mean '{close[0]}'?)" if close else f"; known keys: {', '.join(sorted(KEYS))}"
            raise ConfigError(f"{where} {key}: unknown key{hint}")
        attr, expected, valid = spec
        if not valid(value):
            raise ConfigError(f"{where} {key}: expected {expected}, got {type(value).__name__} {value!r}")
        if attr in ("vanishing_threshold", "exploding_threshold", "timeout"):
            value = float(value)
        if attr == "dtype":
            value = _dtypes.normalize(value)
        if attr == "input_shape":
            value = parse_input_shapes(value, f"{where} {key}:")
        if attr == "memory_limit":
            value = parse_size(value)
        setattr(cfg, attr, value)
    if cfg.vanishing_threshold >= cfg.exploding_threshold:
        raise ConfigError(f"{where}: vanishing-threshold must be below exploding-threshold")


def merge_cli(cfg: Config, overrides: dict[str, Any]) -> Config:
    """CLI flags beat the file: each given flag replaces the file's value."""
    names = {f.name for f in fields(Config)}
    for key, value in overrides.items():
        if value is None or key not in names:
            continue
        if isinstance(value, (list, tuple)) and not value and key not in ("select",):
            continue
        setattr(cfg, key, list(value) if isinstance(value, tuple) else value)
    return cfg


def split_codes(values: tuple[str, ...] | list[str] | None) -> list[str] | None:
    """``--select GL1,GL201 --select GL3`` -> ['GL1', 'GL201', 'GL3']."""
    if not values:
        return None
    out = []
    for v in values:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out
