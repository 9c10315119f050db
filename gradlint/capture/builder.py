"""Shared by every capture method: turns calls (module calls, functions, aten ops) into IR nodes.

Each capture method walks its own representation and calls ``module_call`` / ``function_call``
with its values already resolved to ``Ref``s: a graph node, a parameter, or a constant. The rules
for what becomes a node live here once:

* a leaf module call is one node, located where the user constructed the module;
* data movement (view, permute, getitem, ...) on one graph tensor is an alias, not a node: the
  total gradient norm passes through unchanged;
* calls that only read parameters (``self.weight.t()``) stay "parameter-derived", so that
  ``x @ self.weight.t()`` is recognised as a linear layer owned by the parameter's module;
* calls on constants only, and integer/bool results (masks, positions), are constants;
* a matmul that reads a 2-D-or-more parameter is a linear layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..ir import graph as g
from ..ir.graph import LayerGraph
from ..ir.source import Location
from .kinds import SHAPE_ONLY_AFTER_FIRST, Classified, classify_call

# Conversions of integers to floats (a reshape-kind call in kinds.py).
_CASTS = frozenset({"float", "to", "_to_copy", "type", "type_as", "double", "half", "bfloat16"})

# Parameter names that make a module a "weight layer" (JSON contract).
_WEIGHT_NAME_PREFIXES = ("weight", "in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


def is_weight_param_name(local_name: str) -> bool:
    return local_name.startswith(_WEIGHT_NAME_PREFIXES)


@dataclass(frozen=True)
class Ref:
    """What a value in the captured program is, from the IR's point of view."""

    node: int | None = None  # produced by this IR node
    param: str | None = None  # a parameter (or a view of one): its canonical qualified name
    # a constant computed from an integer model input (``timesteps * ones``): no gradient and no node,
    # but when it is made float the values are that input's (a diffusion model's time embedding)
    origin: int | None = None

    @property
    def is_const(self) -> bool:
        return self.node is None and self.param is None

    @property
    def traced(self) -> bool:
        """Worth recording a call on: a node, a parameter, or integers from an input."""
        return not self.is_const or self.origin is not None


CONST = Ref()


def shape_of(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(s) for s in shape)
    except (TypeError, ValueError):  # symbolic sizes
        return None


def is_float(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    return bool(getattr(dtype, "is_floating_point", False) or getattr(dtype, "is_complex", False))


class IRBuilder:
    def __init__(self, model: Any, sites: Any, capture: str, strip_prefix: str = "") -> None:
        self.graph = LayerGraph(capture=capture)
        self.model = model
        self.sites = sites
        self.strip_prefix = strip_prefix
        self.modules = dict(model.named_modules())
        # named_parameters() lists a shared parameter once: its first name is the canonical one.
        self.params = dict(model.named_parameters())
        self.param_by_id = {id(p): name for name, p in self.params.items()}

    # -- helpers ---------------------------------------------------------------------------
    def qualname(self, name: str) -> str:
        if self.strip_prefix and name.startswith(self.strip_prefix):
            return name[len(self.strip_prefix):]
        return name

    def canonical_param(self, qualname: str) -> str | None:
        qualname = self.qualname(qualname)
        p = self.params.get(qualname)
        if p is None:
            # a tied parameter under its second name: named_parameters(remove_duplicate=False)
            owner, _, local = qualname.rpartition(".")
            mod = self.modules.get(owner)
            t = getattr(mod, local, None) if mod is not None else None
            return self.param_by_id.get(id(t)) if t is not None else None
        return qualname

    def param_dim(self, qualname: str) -> int:
        p = self.params.get(qualname)
        return p.dim() if p is not None else 0

    def site(self, module_name: str) -> Location | None:
        """Where the user constructed the module; for modules made without __init__ (the
        deep copies nn.TransformerEncoder makes of its layer), the nearest ancestor's line."""
        name = module_name
        while True:
            loc = self.sites.get(name)
            if loc is not None or not name:
                return loc
            name = name.rpartition(".")[0]

    def add_input(self, name: str, value: Any) -> int:
        node = self.graph.add(g.INPUT, name, out_shape=shape_of(value),
                              attrs={"float": is_float(value), "name": name})
        return node.id

    def add_output(self, refs: Iterable[Ref]) -> int:
        ids = []
        for r in refs:
            if r.node is not None and r.node not in ids:
                ids.append(r.node)
        node = self.graph.add(g.OUTPUT, "output", ids,
                              in_shapes=[self.graph[i].out_shape for i in ids])
        return node.id

    # -- calls -----------------------------------------------------------------------------
    def module_call(self, module_name: str, module: Any, cls: Classified, inputs: list[Ref],
                    in_values: list[Any], out_value: Any) -> Ref:
        module_name = self.qualname(module_name)
        out_value = first_tensor(out_value)  # LSTM: (output, (h, c)); MultiheadAttention: (output, weights)
        params: dict[str, str] = {}
        weights: list[str] = []
        for local, p in module.named_parameters():
            canon = self.param_by_id.get(id(p))
            if canon is None:
                continue
            params[local] = canon
            if p.dim() >= 2 and (is_weight_param_name(local.rpartition(".")[2]) or cls.kind == g.ATTENTION):
                weights.append(canon)
        attrs = dict(cls.attrs)
        weights = self._reparametrized(module, module_name, cls, params, weights, attrs)
        attrs["float"] = is_float(out_value) or out_value is None
        node_inputs = [r.node for r in inputs if r.node is not None]
        if cls.kind in g.WEIGHT_KINDS:
            weights = self._trainable(weights, attrs)
            attrs["has_weight"] = bool(weights) and module_name != "" and not _position_table(cls.kind, node_inputs)
            attrs["weights"] = weights
        node = self.graph.add(
            cls.kind, cls.op, node_inputs, module=module_name, module_type=display_type(module),
            location=self.site(module_name), out_shape=shape_of(out_value),
            in_shapes=[shape_of(v) for v, r in zip(in_values, inputs) if r.node is not None],
            attrs=attrs, params=params,
        )
        return Ref(node=node.id)

    def _reparametrized(self, module: Any, module_name: str, cls: Classified, params: dict[str, str],
                        weights: list[str], attrs: dict[str, Any]) -> list[str]:
        """A weight computed from other parameters (weight norm, spectral norm, parametrizations):
        the forward multiplies by the effective weight (``params[name]`` names it, ``reparam.py``),
        and the trainable tensor of its shape stands for it in the layer's weights."""
        from .reparam import reparametrized

        found = reparametrized(module)
        if not found:
            return weights
        hidden: set[str] = set()
        added: list[str] = []
        kinds = {}
        for name, rp in found.items():
            direction = params.get(rp.direction)
            if direction is None:
                continue
            hidden.add(direction)
            if rp.scale and rp.scale in params:
                hidden.add(params[rp.scale])
            params[name] = rp.effective(module_name)
            kinds[name] = rp.kind
            if is_weight_param_name(name) or cls.kind == g.ATTENTION:
                added.append(direction)
        if kinds:
            attrs["reparametrized"] = kinds
        return [w for w in weights if w not in hidden] + added

    def _trainable(self, weights: list[str], attrs: dict[str, Any]) -> list[str]:
        """The weights training updates; a frozen weight (requires_grad=False) is not a weight layer's
        (the JSON contract's Schema 2), and a layer whose weights are all frozen is marked ``frozen``."""
        trainable = [w for w in weights if getattr(self.params.get(w), "requires_grad", True)]
        if weights and not trainable:
            attrs["frozen"] = True
            attrs["frozen_weights"] = list(weights)
        return trainable

    def function_call(self, name: str, args: tuple, kwargs: dict, inputs: list[Ref], in_values: list[Any],
                      out_value: Any, location: Location | None, context: str | None = None) -> Ref:
        """``inputs``/``in_values``: the tensor arguments in order, resolved and as values.
        ``context``: the innermost module whose forward made the call (a fallback location when
        the call has no frame in the user's code, as inside a library model)."""
        if name == "addcmul" and len(inputs) == 3 and kwargs.get("value", 1) == 1 and len(args) <= 3:
            # input + t1 * t2 (timm's GlobalResponseNorm: bias + weight * (x * nx)): a product and a sum
            prod = self.function_call("mul", tuple(in_values[1:]), {}, inputs[1:], in_values[1:], out_value,
                                      location, context)
            return self.function_call("add", (in_values[0], out_value), {}, [inputs[0], prod],
                                      [in_values[0], out_value], out_value, location, context)
        cls = classify_call(name, args, kwargs)
        if hasattr(out_value, "values") and hasattr(out_value, "indices") and isinstance(out_value, tuple):
            out_value = out_value.values  # torch.return_types (max/min/sort/topk with a dim): the values carry the gradient
        if name in SHAPE_ONLY_AFTER_FIRST:
            inputs, in_values = inputs[:1], in_values[:1]
        node_refs = [(r, v) for r, v in zip(inputs, in_values) if r.node is not None]
        param_refs = [r.param for r in inputs if r.param is not None]
        origin = next((r.origin for r in inputs if r.origin is not None), None)
        if origin is None:  # integers straight from an input node
            origin = next((r.node for r, v in node_refs if not is_float(v) and self.graph[r.node].kind == g.INPUT), None)
        if not node_refs:
            if param_refs and cls.kind in (g.RESHAPE, g.OTHER, g.MUL):
                return Ref(param=param_refs[0])  # e.g. self.weight.t(), weight * scale
            if origin is not None and not param_refs:
                if is_float(out_value) and cls.kind == g.RESHAPE and name in _CASTS:
                    return self._to_float(origin, out_value, location, context)
                if not is_float(out_value):
                    return Ref(origin=origin)  # still the input's integers, as far as their statistics go
            return CONST
        if out_value is not None and not is_float(out_value) and cls.kind != g.RESHAPE:
            return Ref(origin=origin) if origin is not None else CONST  # masks, positions: no gradient
        if cls.kind == g.RESHAPE and cls.op not in ("pad",):
            floats = [r for r, v in node_refs if is_float(v)]
            if len(floats) == 1:
                return floats[0]
            if not floats and len(node_refs) == 1:
                if not is_float(out_value):
                    return node_refs[0][0]
                if origin is not None and name in _CASTS:
                    return self._to_float(origin, out_value, location, context)

        kind, op, attrs = cls.kind, cls.op, dict(cls.attrs)
        params: dict[str, str] = {}
        owner = None
        weights = [p for p in param_refs if self.param_dim(p) >= 2]
        if kind == g.MATMUL and weights:
            kind, op = g.LINEAR, "linear"
        for i, p in enumerate(param_refs):
            role = "weight" if p in weights and kind in g.WEIGHT_KINDS else ("bias" if kind in g.WEIGHT_KINDS else "scale")
            if kind == g.ADD:
                role = "bias"
            params[role if role not in params else f"{role}{i}"] = p
        if weights and kind in g.WEIGHT_KINDS:
            owner = self._weight_owner(weights[0])
        if kind in g.WEIGHT_KINDS:
            weights = self._trainable(weights, attrs)
            attrs["has_weight"] = bool(weights) and bool(owner)
            attrs["weights"] = weights
        attrs["float"] = is_float(out_value) or out_value is None
        attrs["function"] = name
        if owner and kind in g.WEIGHT_KINDS:
            location = self.site(owner) or location  # a weight layer is changed where it is made
        elif location is None:  # library code all the way: where the enclosing module was built
            location = self.site(self.qualname(context) if context else "")
        if kind in (g.ADD, g.MUL, g.OTHER):
            # the numbers in ``x * 0.5``, ``x.pow(2)``, ``x.clamp(min=0)``: the estimator needs them
            # (add's ``alpha`` is a coefficient, read by classify_call, not an added constant)
            coefficient = {2, "alpha"} if kind == g.ADD and "alpha" in attrs else set()
            scalars = [(i, float(a)) for i, a in enumerate(args)
                       if isinstance(a, (int, float)) and not isinstance(a, bool) and i not in coefficient]
            scalars += [(k, float(v)) for k, v in kwargs.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in coefficient]
            if scalars:
                attrs["scalars"] = tuple(scalars)
        node = self.graph.add(
            kind, op, [r.node for r, _ in node_refs],
            module=owner, module_type=display_type(self.modules[owner]) if owner in self.modules else
            ("Parameter" if owner else None),
            location=location, out_shape=shape_of(out_value),
            in_shapes=[shape_of(v) for _, v in node_refs], attrs=attrs, params=params,
        )
        return Ref(node=node.id)

    def _to_float(self, origin: int, out_value: Any, location: Location | None, context: str | None) -> Ref:
        """Integers from input ``origin`` made float (``t.float()``): a node whose values have that
        input's statistics (estimate/handlers/io.py), with no gradient behind it."""
        node = self.graph.add(g.OTHER, "to_float", [origin], out_shape=shape_of(out_value),
                              in_shapes=[self.graph[origin].out_shape], attrs={"float": True},
                              location=location or self.site(self.qualname(context) if context else ""))
        return Ref(node=node.id)

    def _weight_owner(self, weight: str) -> str:
        """The layer a functional weight belongs to: its module (``F.conv2d(x, self.weight)`` in a
        custom module); a parameter of the model itself or of a ParameterList/ParameterDict is a
        layer of its own, named by the parameter."""
        import torch.nn as nn

        owner = weight.rpartition(".")[0]
        if not owner or isinstance(self.modules.get(owner), (nn.ParameterList, nn.ParameterDict)):
            return weight
        return owner

    def finish(self) -> LayerGraph:
        """One module is one weight layer with all its weights (the contract's grad RMS is over the
        module's weight tensors): a custom module multiplying by ``self.wq``, ``self.wk`` and
        ``self.wv`` in three calls gets the three in every one of its nodes' ``weights``."""
        union: dict[str, list[str]] = {}
        for n in self.graph:
            if n.kind in g.WEIGHT_KINDS and n.module and n.attrs.get("function"):
                names = union.setdefault(n.module, [])
                names += [w for w in n.attrs.get("weights", ()) if w not in names]
        for n in self.graph:
            names = union.get(n.module or "")
            if names and n.attrs.get("function") and n.kind in g.WEIGHT_KINDS and n.attrs.get("has_weight"):
                n.attrs["weights"] = list(names)
        return self.graph


def display_type(module: Any) -> str:
    """The module's class name; a ``torch.jit.script``-ed module's original one ('Linear', not
    'RecursiveScriptModule')."""
    name = getattr(module, "original_name", None) if type(module).__name__ == "RecursiveScriptModule" else None
    return name if isinstance(name, str) and name else type(module).__name__


def _position_table(kind: str, node_inputs: list) -> bool:
    """An embedding looked up with indices the model made itself (arange positions, T5's relative
    position buckets, BERT's default token types) is a position table, not a weight layer."""
    return kind == g.EMBEDDING and not node_inputs


def first_tensor(value: Any) -> Any:
    """The first tensor-like value in a (nested) tuple/list, else the value itself."""
    if isinstance(value, (tuple, list)):
        for v in value:
            t = first_tensor(v)
            if hasattr(t, "shape"):
                return t
        return None
    return value


def has_tensor(value: Any) -> bool:
    """Does a call's result hold a tensor (directly or in a tuple/list/dict)?"""
    import torch

    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(has_tensor(v) for v in value.values())
    return False


def fx_nodes_in(arg: Any) -> list[Any]:
    """The fx Nodes inside (possibly nested) call arguments, in order."""
    import torch.fx as fx

    found: list[Any] = []
    fx.node.map_arg(arg, lambda n: found.append(n) or n)
    return found
