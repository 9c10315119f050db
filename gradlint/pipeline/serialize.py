"""Reports as plain JSON data and back, checked against the dataclasses' own type hints.

One format serves two readers: the analysis worker returns its ``FileResult`` over a pipe, and the
results cache stores it on disk. Unlike pickle, reading it can never run code, and a value of the
wrong shape (a planted or truncated cache entry, a worker that wrote garbage) raises
``ShapeError`` instead of producing a report that breaks a renderer later. The full report is
kept, not only the JSON contract's part: the renderers (full format, chart, Mermaid, plots)
draw the same from a decoded report as from the one built in-process.

Fields marked ``metadata={"in_process_only": True}`` (the captured graph) are left out and come
back as their default. Where a type says ``Any``, only JSON values, tuples and ``Location`` are
allowed. No torch here: the cache reads entries without importing it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any, Union, get_args, get_origin

from ..ir.source import Location

_NONE = type(None)
# Classes allowed where a type hint says Any, by the tag that names them.
_TAGGED: dict[str, type] = {"Location": Location}


class ShapeError(ValueError):
    """Data that does not have the shape its type declares."""


def dumps(value: Any, tp: Any) -> str:
    """``value`` (of type ``tp``) as one line of JSON."""
    return json.dumps(to_plain(value, tp), separators=(",", ":"))


def loads(text: str | bytes, tp: Any) -> Any:
    """The ``tp`` that ``dumps`` wrote; ShapeError for anything else."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ShapeError(f"not JSON: {e}") from None
    return from_plain(data, tp)


def to_plain(value: Any, tp: Any, where: str = "$") -> Any:
    return _encode(value, tp, where)


def from_plain(data: Any, tp: Any, where: str = "$") -> Any:
    try:
        return _decode(data, tp, where)
    except RecursionError:
        raise ShapeError(f"{where}: nested too deeply") from None


# -- type hints ---------------------------------------------------------------------------------
def _late_names() -> dict[str, Any]:
    """Names the report modules import only for type checking (to stay torch-free at import)."""
    from ..estimate.propagate import Estimate
    from ..ir.graph import LayerGraph
    from ..verify.measurement import Measurement

    return {"Estimate": Estimate, "LayerGraph": LayerGraph, "Measurement": Measurement}


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    namespace = dict(vars(sys.modules[cls.__module__]))
    namespace.update(_late_names())
    return typing.get_type_hints(cls, globalns=namespace)


@lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, has a default) of each field that travels."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("in_process_only") or not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        out.append((f.name, hints[f.name], has_default))
    return tuple(out)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _accepts(tp: Any, value: Any) -> bool:
    """Whether a runtime value belongs to one arm of a union (enough to choose the arm)."""
    if tp is Any:
        return True
    if tp is _NONE:
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = get_origin(tp)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, tp)


# -- encoding -----------------------------------------------------------------------------------
def _encode(value: Any, tp: Any, where: str) -> Any:
    if tp is Any or tp is object:
        return _encode_any(value, where)
    if _is_union(tp):
        for arm in get_args(tp):
            if _accepts(arm, value):
                return _encode(value, arm, where)
        raise ShapeError(f"{where}: {type(value).__name__} is not {tp}")
    if tp is _NONE:
        if value is not None:
            raise ShapeError(f"{where}: expected None, got {type(value).__name__}")
        return None
    if tp in (str, int, bool):
        if not _accepts(tp, value):
            raise ShapeError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
        return value
    if tp is float:
        if not _accepts(float, value):
            raise ShapeError(f"{where}: expected float, got {type(value).__name__}")
        return float(value)
    if isinstance(tp, type) and issubclass(tp, PurePath):
        if not isinstance(value, PurePath):
            raise ShapeError(f"{where}: expected a path, got {type(value).__name__}")
        return str(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, tp):
            raise ShapeError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
        return {name: _encode(getattr(value, name), hint, f"{where}.{name}") for name, hint, _ in _fields(tp)}
    origin, args = get_origin(tp) or tp, get_args(tp)
    if origin in (list, set, frozenset) or origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, origin):
            raise ShapeError(f"{where}: expected {origin.__name__}, got {type(value).__name__}")
        item = args[0] if args else Any
        items = sorted(value, key=repr) if origin in (set, frozenset) else value
        return [_encode(x, item, f"{where}[{i}]") for i, x in enumerate(items)]
    if origin is tuple:
        if not isinstance(value, tuple) or (args and len(args) != len(value)):
            raise ShapeError(f"{where}: expected a tuple of {len(args)}")
        return [_encode(x, args[i] if args else Any, f"{where}[{i}]") for i, x in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected dict, got {type(value).__name__}")
        key_tp, val_tp = args or (Any, Any)
        if key_tp is str:
            return {_encode(k, str, where): _encode(v, val_tp, f"{where}[{k!r}]") for k, v in value.items()}
        return [[_encode(k, key_tp, f"{where}.key"), _encode(v, val_tp, f"{where}[{k!r}]")] for k, v in value.items()]
    if origin is typing.Literal:
        if value not in args:
            raise ShapeError(f"{where}: {value!r} is not one of {args}")
        return value
    raise ShapeError(f"{where}: cannot store a value of type {tp}")


def _encode_any(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode_any(x, f"{where}[{i}]") for i, x in enumerate(value)]
    if isinstance(value, tuple):
        return {"$tuple": [_encode_any(x, f"{where}[{i}]") for i, x in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("$") for k in value):
            raise ShapeError(f"{where}: only string keys (not starting with $) can be stored here")
        return {k: _encode_any(v, f"{where}[{k!r}]") for k, v in value.items()}
    for tag, cls in _TAGGED.items():
        if type(value) is cls:
            return {"$type": tag, **_encode(value, cls, where)}
    raise ShapeError(f"{where}: cannot store a {type(value).__name__} here")


# -- decoding -----------------------------------------------------------------------------------
def _decode(data: Any, tp: Any, where: str) -> Any:
    if tp is Any or tp is object:
        return _decode_any(data, where)
    if _is_union(tp):
        arms = get_args(tp)
        if data is None and _NONE in arms:
            return None
        errors = []
        for arm in arms:
            if arm is _NONE:
                continue
            try:
                return _decode(data, arm, where)
            except ShapeError as e:
                errors.append(str(e))
        raise ShapeError(errors[0] if len(errors) == 1 else f"{where}: matches no type of {tp}")
    if tp is _NONE:
        if data is not None:
            raise ShapeError(f"{where}: expected null")
        return None
    if tp in (str, int, bool):
        if not _accepts(tp, data):
            raise ShapeError(f"{where}: expected {tp.__name__}, got {type(data).__name__}")
        return data
    if tp is float:
        if not _accepts(float, data):
            raise ShapeError(f"{where}: expected a number, got {type(data).__name__}")
        return float(data)
    if isinstance(tp, type) and issubclass(tp, PurePath):
        if not isinstance(data, str):
            raise ShapeError(f"{where}: expected a path string")
        return Path(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(data, tp, where)
    origin, args = get_origin(tp) or tp, get_args(tp)
    if origin in (list, set, frozenset) or origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(data, list):
            raise ShapeError(f"{where}: expected a list, got {type(data).__name__}")
        item = args[0] if args else Any
        return origin(_decode(x, item, f"{where}[{i}]") for i, x in enumerate(data))
    if origin is tuple:
        if not isinstance(data, list) or (args and len(args) != len(data)):
            raise ShapeError(f"{where}: expected a list of {len(args)}")
        return tuple(_decode(x, args[i] if args else Any, f"{where}[{i}]") for i, x in enumerate(data))
    if origin is dict:
        key_tp, val_tp = args or (Any, Any)
        if key_tp is str:
            if not isinstance(data, dict):
                raise ShapeError(f"{where}: expected an object, got {type(data).__name__}")
            return {k: _decode(v, val_tp, f"{where}[{k!r}]") for k, v in data.items()}
        if not isinstance(data, list) or not all(isinstance(p, list) and len(p) == 2 for p in data):
            raise ShapeError(f"{where}: expected a list of [key, value] pairs")
        return {_decode(k, key_tp, f"{where}.key"): _decode(v, val_tp, f"{where}[{i}]") for i, (k, v) in enumerate(data)}
    if origin is typing.Literal:
        if data not in args:
            raise ShapeError(f"{where}: {data!r} is not one of {args}")
        return data
    raise ShapeError(f"{where}: cannot read a value of type {tp}")


def _decode_dataclass(data: Any, cls: type, where: str, tagged: bool = False) -> Any:
    """``tagged``: the object carries its ``$type`` (where the type hint says Any)."""
    if not isinstance(data, dict):
        raise ShapeError(f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}")
    fields = _fields(cls)
    known = {name for name, _, _ in fields}
    unknown = [k for k in data if k not in known and not (tagged and k == "$type")]
    if unknown:
        raise ShapeError(f"{where}: {cls.__name__} has no field {unknown[0]!r}")
    values = {}
    for name, hint, has_default in fields:
        if name in data:
            values[name] = _decode(data[name], hint, f"{where}.{name}")
        elif not has_default:
            raise ShapeError(f"{where}: {cls.__name__} needs {name!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:  # a __post_init__ that checks its values
        raise ShapeError(f"{where}: {cls.__name__}: {e}") from None


def _decode_any(data: Any, where: str) -> Any:
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [_decode_any(x, f"{where}[{i}]") for i, x in enumerate(data)]
    if isinstance(data, dict):
        if "$tuple" in data:
            if len(data) != 1 or not isinstance(data["$tuple"], list):
                raise ShapeError(f"{where}: malformed tuple")
            return tuple(_decode_any(x, f"{where}[{i}]") for i, x in enumerate(data["$tuple"]))
        if "$type" in data:
            cls = _TAGGED.get(data["$type"]) if isinstance(data["$type"], str) else None
            if cls is None:
                raise ShapeError(f"{where}: unknown type tag {data['$type']!r}")
            return _decode_dataclass(data, cls, where, tagged=True)
        if any(k.startswith("$") for k in data):
            raise ShapeError(f"{where}: unexpected key starting with $")
        return {k: _decode_any(v, f"{where}[{k!r}]") for k, v in data.items()}
    raise ShapeError(f"{where}: unexpected {type(data).__name__}")
