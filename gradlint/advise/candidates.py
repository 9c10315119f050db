"""Candidate changes for a model whose gradient vanishes or explodes, each described three ways:
what the estimate should re-run with (a graph edit and/or re-initialized weights), what the user
reads (title, detail), and what the codemod does (``edit``: plain JSON for ``gradlint/fix``).

The three must describe the same change. So every candidate acts on *source sites* (the line that
constructs a layer or calls an activation), and the graph edit covers every node made at those
sites: a block class written once and instantiated 20 times is changed 20 times, as editing its
one line would.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..ir import graph as g
from ..ir.ops import SATURATING
from .anatomy import Anatomy, Unit, blocks, site_json, site_key, user_class_source
from .edits import GraphEdit
from .weights import InitScheme

# How large a change is, for ranking fixes that are equally good (smaller first).
# A norm swap ranks with a norm insertion: it changes how the model depends on the batch.
SIZE = {"init": 1, "gate": 2, "activation": 3, "norm-swap": 4, "normalization": 4, "residual": 5, "other": 6}

RELU_LIKE = frozenset({"relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "selu", "gelu", "silu", "mish",
                       "hardswish", "softplus"})
TORCH_GAIN = {"sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75, "identity": 1.0}
NN_LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


@dataclass
class InitHost:
    """Where an init method can go: the model's class (``cls``) or the factory function that returns it."""

    path: str
    cls: str | None = None
    function: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": os.path.abspath(self.path)}
        if self.cls:
            out["class"] = self.cls
        if self.function:
            out["function"] = self.function
        return out

    def describe(self) -> str:
        return f"{self.cls}.__init__" if self.cls else f"{self.function}()"


@dataclass
class Candidate:
    title: str
    kind: str  # init | activation | normalization | residual | gate | other
    applicability: str  # safe | unsafe | manual
    size: int
    detail: str
    changes: list[dict[str, Any]] = field(default_factory=list)  # the codemod plan, in order
    graph_edit: GraphEdit = field(default_factory=GraphEdit)
    scheme: InitScheme | None = None  # re-initialize ``reinit`` with this law
    reinit: dict[str, str] = field(default_factory=dict)  # canonical parameter name -> weight | bias
    search_gain: bool = False  # choose the scheme's gain so that the predicted attenuation is ~1

    @property
    def edit(self) -> dict[str, Any] | None:
        return {"changes": self.changes} if self.changes and self.applicability != "manual" else None


class Proposals:
    """Builds the candidates for one model."""

    def __init__(self, graph: Any, model: Any, host: InitHost | None, direction: str) -> None:
        self.graph = graph
        self.model = model
        self.host = host
        self.direction = direction  # vanishing | exploding
        self.anatomy = Anatomy(graph)
        self.act = self.anatomy.dominant_activation()

    # -- init ---------------------------------------------------------------------------------------
    def layer_types(self) -> list[type]:
        """torch.nn layer classes of the model's Linear/Conv weight layers (isinstance covers subclasses)."""
        import torch.nn as nn

        found = []
        for u in self.anatomy.units:
            mod = self._module(self.graph[u.layer].module)
            for name in NN_LAYER_TYPES:
                cls = getattr(nn, name)
                if mod is not None and isinstance(mod, cls) and cls not in found:
                    found.append(cls)
        return found

    @property
    def heads(self) -> list[str]:
        """Output layers: re-initialized with unit gain (std 1/sqrt(fan_in)), whatever the hidden
        layers get, so the outputs keep the scale of their inputs (a sigmoid stack's gain of 12
        would make the logits huge)."""
        names = {self.graph[u.layer].module for u in self.anatomy.units} - \
            {self.graph[u.layer].module for u in self.anatomy.hidden_units}
        return sorted(n for n in names if n)

    def reinit_params(self, types: list[type]) -> dict[str, str]:
        """Every parameter the init loop touches (``isinstance(m, types)`` over
        ``model.named_modules()``) and its role: ``weight``, ``head`` (an output layer's weight) or ``bias``."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        heads = set(self.heads)
        out: dict[str, str] = {}
        for name, m in self.model.named_modules():
            if isinstance(m, tuple(types)):
                for role in ("weight", "bias"):
                    p = getattr(m, role, None)
                    if p is not None and id(p) in names:
                        out.setdefault(names[id(p)], "head" if role == "weight" and name in heads else role)
        return out

    def init_change(self, scheme: InitScheme, types: list[type]) -> dict[str, Any]:
        assert self.host is not None
        return {"op": "init", "host": self.host.to_json(), "types": [t.__name__ for t in types],
                "heads": self.heads, "law": scheme.law, "gain": round(scheme.gain, 4),
                "nonlinearity": scheme.nonlinearity, "slope": scheme.slope}

    def init_candidates(self) -> list[Candidate]:
        types = self.layer_types()
        hidden = self.anatomy.hidden_units
        if not types or not hidden or 2 * sum(self.anatomy.has_norm(u) for u in hidden) >= len(hidden):
            # A layer followed by normalization is scale-invariant: its init changes its gradient only
            # as 1/scale, with the weights' own scale growing alike, so the ratio would improve on
            # paper while the updates relative to the weights shrink. Not a fix.
            return []
        params = self.reinit_params(types)
        count = sum(1 for r in params.values() if r == "weight")
        what = "/".join(t.__name__ for t in types)
        act = self.act or "identity"
        schemes: list[tuple[InitScheme, bool]] = []
        if act in RELU_LIKE or act == "identity":
            slope = 0.01 if act == "leaky_relu" else 0.0
            nonlin = "leaky_relu" if act == "leaky_relu" else "relu"
            schemes.append((InitScheme("kaiming_normal", math.sqrt(2.0 / (1 + slope * slope)), nonlin, slope), False))
        if act in TORCH_GAIN and act != "relu":
            schemes.append((InitScheme("xavier_normal", TORCH_GAIN[act], act), False))
            schemes.append((InitScheme("orthogonal", TORCH_GAIN[act], act), False))
        schemes.append((InitScheme("scaled_normal", 1.0, act), True))
        out = []
        for scheme, search in schemes:
            where = self.host.describe() if self.host else "the model's constructor"
            title = f"{init_name(scheme)} on {count} {what} layer{'s' if count != 1 else ''}"
            heads = (f"; the output layer{'s' if len(self.heads) != 1 else ''} ({', '.join(self.heads)}) "
                     f"get{'' if len(self.heads) != 1 else 's'} unit gain, std 1/sqrt(fan_in)") if self.heads else ""
            detail = (f"re-initialize every hidden {what} weight with {init_call(scheme)} and zero the biases{heads}; "
                      f"in a method called at the end of {where}")
            cand = Candidate(title, "init", "safe" if self.host else "manual", SIZE["init"], detail,
                             scheme=scheme, reinit=params, search_gain=search)
            if self.host:
                cand.changes = [self.init_change(scheme, types)]
            else:
                cand.detail += " (gradlint cannot tell which code builds this model: add it by hand)"
            out.append(cand)
        return out

    # -- activation swap ------------------------------------------------------------------------------
    def activation_candidates(self) -> list[Candidate]:
        if self.direction != "vanishing":
            return []
        acts = [a for u in self.anatomy.hidden_units if (a := self.anatomy.activation_of(u)) is not None]
        saturating = [a for a in acts if a.op in SATURATING]
        if not saturating:
            return []
        sites = self.anatomy.sites(saturating)
        # a site that also makes gates (x * sigmoid(g)) must keep its activation
        gate_sites = {site_key(n.location) for n in self.graph if n.kind == g.ACTIVATION and self.anatomy.is_gate(n)}
        keys = {k for k in sites if k not in gate_sites}
        if not keys:
            return []
        nodes = [n for n in self.anatomy.nodes_at(keys, (g.ACTIVATION,)) if n.op in SATURATING]
        from_ops = sorted({n.op for n in nodes})
        edit = GraphEdit(ops={n.id: (g.ACTIVATION, "relu", {}) for n in nodes})
        types = self.layer_types()
        scheme = InitScheme("kaiming_normal", math.sqrt(2.0), "relu")
        changes = [{"op": "swap_activation", "to": "relu",
                    "sites": [dict(site_json(sites[k][0].location), **{"from": sites[k][0].op}) for k in sorted(keys)]}]
        title = f"swap {'/'.join(_act_name(o) for o in from_ops)} -> ReLU ({len(keys)} site{'s' if len(keys) != 1 else ''})"
        detail = (f"use ReLU instead of {', '.join(_act_name(o) for o in from_ops)} in the hidden layers "
                  f"({_where(keys)})")
        params: dict[str, str] = {}
        if types:
            params = self.reinit_params(types)
            title += " + He init"
            detail += f", and He-initialize every {'/'.join(t.__name__ for t in types)} weight for ReLU"
            if self.host:
                changes.append(self.init_change(scheme, types))
        cand = Candidate(title, "activation", "unsafe" if self.host or not types else "manual", SIZE["activation"],
                         detail, changes=changes, graph_edit=edit, scheme=scheme if params else None, reinit=params)
        return [cand]

    # -- normalization ---------------------------------------------------------------------------------
    def normalization_candidates(self) -> list[Candidate]:
        out = []
        if self.direction == "vanishing":
            out += self._insert_norms()
        out += self._swap_norms()
        return out

    def _insert_norms(self) -> list[Candidate]:
        units = [u for u in self.anatomy.hidden_units if not self.anatomy.has_norm(u)]
        if not units:
            return []
        by_site: dict[tuple, list[Unit]] = {}
        for u in units:
            key = site_key(self.graph[u.layer].location)
            if key is not None:
                by_site.setdefault(key, []).append(u)
        # a site some of whose layers are heads or already normalized cannot be wrapped uniformly
        all_at = self.anatomy.sites([self.graph[u.layer] for u in self.anatomy.units])
        keys = [k for k in by_site if len(all_at.get(k, [])) == len(by_site[k])]
        if not keys:
            return []
        variants = [("standard", "BatchNorm after each conv, LayerNorm after each Linear")]
        import torch.nn as nn

        if hasattr(nn, "RMSNorm") and all(self.graph[by_site[k][0].layer].kind == g.LINEAR for k in keys):
            variants.append(("rms", "RMSNorm after each Linear"))
        out = []
        for variant, label in variants:
            edit = GraphEdit()
            sites = []
            norms = set()
            for k in keys:
                layer = self.graph[by_site[k][0].layer]
                norm, op, attrs = _norm_for(layer, variant)
                if norm is None:
                    break
                norms.add(norm)
                for n in self.anatomy.nodes_at({k}, (layer.kind,)):
                    edit.norms_after[n.id] = (op, attrs)
                sites.append(dict(site_json(layer.location), norm=norm, layer=layer.module_type or layer.kind))
            else:
                title = f"{' / '.join(sorted(norms))} after each weight layer ({len(edit.norms_after)} layers)"
                detail = (f"wrap each hidden weight layer's constructor as nn.Sequential(layer, norm) "
                          f"({label}; {_where(set(keys))})")
                out.append(Candidate(title, "normalization", "unsafe", SIZE["normalization"], detail,
                                     changes=[{"op": "insert_norm", "sites": sites}], graph_edit=edit))
        return out

    def _swap_norms(self) -> list[Candidate]:
        """LayerNorm/GroupNorm -> BatchNorm under saturating activations (BatchNorm removes the
        per-channel offset sigmoid leaves, LayerNorm does not); BatchNorm -> LayerNorm/GroupNorm in
        a deep BatchNorm stack that explodes."""
        norms = [n for n in self.graph if n.kind == g.NORM and n.module]
        if self.direction == "vanishing":
            if self.act not in SATURATING:
                return []
            pick = [n for n in norms if n.op in ("layer_norm", "group_norm")]
            to = "batch"
        else:
            pick = [n for n in norms if n.op == "batch_norm"]
            to = "layer"
        edit = GraphEdit()
        sites = []
        names = set()
        for key, nodes in self.anatomy.sites(pick).items():
            n = nodes[0]
            swap = _norm_swap(n, to, self.graph)
            if swap is None:
                return []
            new_name, op, attrs = swap
            names.add(new_name)
            for m in self.anatomy.nodes_at({key}, (g.NORM,)):
                edit.ops[m.id] = (g.NORM, op, {**attrs, "drop_params": True})
            sites.append(dict(site_json(n.location), to=new_name, **{"from": n.module_type or n.op}))
        if not sites:
            return []
        old = sorted({n.module_type or n.op for n in pick})
        title = f"swap {'/'.join(old)} -> {'/'.join(sorted(names))} ({len(sites)} site{'s' if len(sites) != 1 else ''})"
        detail = f"construct {', '.join(sorted(names))} instead of {', '.join(old)} ({_where({site_key(self.graph[s].location) for s in edit.ops})})"
        return [Candidate(title, "normalization", "unsafe", SIZE["norm-swap"], detail,
                          changes=[{"op": "swap_norm", "sites": sites}], graph_edit=edit)]

    # -- residual connections --------------------------------------------------------------------------
    def residual_candidates(self) -> list[Candidate]:
        if self.direction != "vanishing":
            return []
        out = []
        found = [b for b in blocks(self.graph, self.model) if self._is_deep_block(b)]
        by_class: dict[type, list] = {}
        for b in found:
            by_class.setdefault(b.cls, []).append(b)
        for cls, bs in by_class.items():
            instances = [n for n, m in self.model.named_modules() if type(m) is cls]
            if len(instances) != len(bs) or len(bs) < 2:
                continue  # some calls of the class change shape: one edit of its forward cannot fit all
            span = user_class_source(cls)
            if span is None:
                continue
            edit = GraphEdit(residuals=[(b.entry, b.exit) for b in bs])
            title = f"residual x + {cls.__name__}(x) around {len(bs)} blocks"
            detail = f"return the input plus the block's output in {cls.__name__}.forward ({span[0]}:{span[1]})"
            out.append(Candidate(title, "residual", "unsafe", SIZE["residual"], detail, graph_edit=edit,
                                 changes=[{"op": "residual", "form": "block", "path": os.path.abspath(span[0]),
                                           "class": cls.__name__}]))
        out += self._loop_residuals()
        return out

    def _is_deep_block(self, b: Any) -> bool:
        """A block holding at least one weight layer."""
        return any(self.graph[i].is_weight_layer for i in range(b.entry + 1, b.exit + 1))

    def _loop_residuals(self) -> list[Candidate]:
        """Units whose layers live in a container attribute of a user class (``self.layers =
        nn.ModuleList(...)``, iterated in its forward): ``x = x + unit(x)`` in that loop."""
        import torch.nn as nn

        groups: dict[tuple[str, str], list[Unit]] = {}
        for u in self.anatomy.hidden_units:
            name = self.graph[u.layer].module or ""
            parts = name.split(".")
            if len(parts) < 2 or not parts[-1].isdigit():
                continue
            container = ".".join(parts[:-1])
            if not isinstance(self._module(container), nn.ModuleList):
                continue
            owner, _, attr = container.rpartition(".")
            groups.setdefault((owner, attr), []).append(u)
        out = []
        for (owner, attr), units in groups.items():
            mod = self._module(owner)
            span = user_class_source(type(mod)) if mod is not None else None
            if span is None or len(units) < 2:
                continue
            if not all(self.anatomy.same_shape(self.graph[u.layer].inputs[0], u.end) for u in units if self.graph[u.layer].inputs):
                continue
            edit = GraphEdit(residuals=[(self.graph[u.layer].inputs[0], u.end) for u in units])
            cls = type(mod).__name__
            title = f"residual x = x + f(x) around {len(units)} layers of {cls}.{attr}"
            detail = f"in {cls}.forward, add the loop's input to what each iteration over self.{attr} computes"
            out.append(Candidate(title, "residual", "unsafe", SIZE["residual"], detail, graph_edit=edit,
                                 changes=[{"op": "residual", "form": "loop", "path": os.path.abspath(span[0]), "class": cls,
                                           "attr": attr}]))
        return out

    # -- exploding stacks ----------------------------------------------------------------------------
    def exploding_candidates(self) -> list[Candidate]:
        if self.direction != "exploding":
            return []
        out = []
        from ..ir.structure import Structure

        st = Structure(self.graph)
        merges = sorted(st.skip_merges)
        adds = [self.graph[i] for i in merges if self.graph[i].kind == g.ADD]
        if len(adds) >= 2:
            k = 1.0 / math.sqrt(len(adds))
            edit = GraphEdit()
            anc = st.ancestors
            for a in adds:
                ins = list(dict.fromkeys(a.inputs))
                # the branch is the input computed from the other one
                branch = next((b for b in ins for s in ins if b != s and (anc[b] >> s) & 1), None)
                if branch is not None:
                    edit.scales[branch] = k
            out.append(Candidate(f"scale each residual branch by 1/sqrt({len(adds)}) = {k:.2g}", "gate", "manual",
                                 SIZE["gate"], f"multiply the branch of each of the {len(adds)} residual additions by "
                                 f"{k:.2g} before adding it (x = x + {k:.2g} * f(x)), or by a learnable LayerScale "
                                 f"initialized to {k:.2g}", graph_edit=edit))
        bns = [n for n in self.graph if n.kind == g.NORM and n.op == "batch_norm"]
        if len(bns) >= 4:
            edit = GraphEdit(ops={n.id: (g.ACTIVATION, "identity", {}) for n in bns[1::2]})
            out.append(Candidate(f"keep every other BatchNorm ({len(bns) - len(bns[1::2])} of {len(bns)})", "other",
                                 "manual", SIZE["other"],
                                 "remove every second BatchNorm of the stack (nn.Identity() in its place): fewer "
                                 "BatchNorms in series grow the gradient less", graph_edit=edit))
        return out

    def all(self) -> list[Candidate]:
        return (self.init_candidates() + self.activation_candidates() + self.normalization_candidates()
                + self.residual_candidates() + self.exploding_candidates())

    def _module(self, name: str | None) -> Any:
        if name is None:
            return None
        try:
            return self.model.get_submodule(name) if name else self.model
        except (AttributeError, TypeError):
            return None


def init_name(s: InitScheme) -> str:
    if s.law == "kaiming_normal":
        return "He init"
    if s.law == "xavier_normal":
        return f"Xavier init (gain {s.gain:.3g})"
    if s.law == "orthogonal":
        return f"orthogonal init (gain {s.gain:.3g})"
    return f"scaled init (gain {s.gain:.3g})"


def init_call(s: InitScheme) -> str:
    if s.law == "kaiming_normal":
        extra = f", a={s.slope:g}" if s.slope else ""
        return f"nn.init.kaiming_normal_(w, nonlinearity=\"{s.nonlinearity or 'relu'}\"{extra})"
    if s.law == "xavier_normal":
        return f"nn.init.xavier_normal_(w, gain={s.gain:.4g})"
    if s.law == "orthogonal":
        return f"nn.init.orthogonal_(w, gain={s.gain:.4g})"
    return f"nn.init.normal_(w, std={s.gain:.4g} / sqrt(fan_in))"


def _act_name(op: str) -> str:
    return {"sigmoid": "Sigmoid", "tanh": "Tanh", "hardsigmoid": "Hardsigmoid", "hardtanh": "Hardtanh",
            "softsign": "Softsign", "logsigmoid": "LogSigmoid"}.get(op, op)


def _where(keys: set) -> str:
    shown = sorted(k for k in keys if k is not None)
    text = ", ".join(f"{p}:{line}" for p, line, _ in shown[:3])
    return text + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def _norm_for(layer: Any, variant: str) -> tuple[str | None, str, dict]:
    """(norm class name, graph op, attrs) to put after ``layer``."""
    shape = layer.out_shape
    if layer.kind in (g.CONV, g.CONV_TRANSPOSE):
        if not shape or len(shape) < 3 or len(shape) > 5 or variant != "standard":
            return None, "", {}
        return f"BatchNorm{len(shape) - 2}d", "batch_norm", {}
    if not shape:
        return None, "", {}
    if variant == "rms":
        return "RMSNorm", "rms_norm", {"normalized_shape": (shape[-1],)}
    return "LayerNorm", "layer_norm", {"normalized_shape": (shape[-1],)}


def _norm_swap(n: Any, to: str, graph: Any) -> tuple[str, str, dict] | None:
    shape = n.in_shapes[0] if n.in_shapes and n.in_shapes[0] is not None else graph[n.inputs[0]].out_shape
    if not shape:
        return None
    if to == "batch":
        if n.op == "layer_norm" and len(shape) != 2:
            return None  # LayerNorm over tokens (N, T, C): BatchNorm1d would read T as channels
        if len(shape) < 2 or len(shape) > 5:
            return None
        return (f"BatchNorm{max(len(shape) - 2, 1)}d", "batch_norm", {})
    if len(shape) == 2:
        return ("LayerNorm", "layer_norm", {"normalized_shape": (shape[-1],)})
    return ("GroupNorm", "group_norm", {"num_groups": 1})
