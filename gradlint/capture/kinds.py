"""Classification: what kind of IR node is this module, this torch function, this aten op?

One table serves every capture method. Modules are matched by type (torch.nn) and, for library
modules we have never seen (Hugging Face's ``NewGELUActivation``, timm's ``LayerNorm2d``), by the
class name when the module has no children — so GPT-2's tanh-approximated GELU is a GELU, not a
tanh, and a Llama ``RMSNorm`` is a norm rather than a pile of arithmetic.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from ..ir import graph as g



@dataclass
class Classified:
    kind: str
    op: str
    attrs: dict[str, Any] = field(default_factory=dict)


def _attrs(module: Any, *names: str) -> dict[str, Any]:
    out = {}
    for n in names:
        v = getattr(module, n, None)
        if isinstance(v, (int, float, bool, str, tuple, list)) or v is None:
            out[n] = tuple(v) if isinstance(v, list) else v
    return out


def _module_table() -> list[tuple[type, Callable[[Any], Classified]]]:
    import torch.nn as nn

    conv_fields = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
    rnn_fields = ("mode", "input_size", "hidden_size", "num_layers", "bidirectional", "batch_first", "nonlinearity", "proj_size")
    norm_fields = ("num_features", "eps", "momentum", "affine", "track_running_stats", "normalized_shape",
                   "num_groups", "num_channels", "elementwise_affine")

    def act(op: str, **fixed: Any) -> Callable[[Any], Classified]:
        def f(m: Any) -> Classified:
            a = dict(fixed)
            for src, dst in (("negative_slope", "slope"), ("alpha", "alpha"), ("approximate", "approximate"),
                             ("min_val", "min_val"), ("max_val", "max_val"), ("beta", "beta"),
                             ("threshold", "threshold"), ("lower", "lower"), ("upper", "upper"), ("dim", "dim")):
                v = getattr(m, src, None)
                if isinstance(v, (int, float, str)):
                    a[dst] = v
            if op == "prelu":
                a["num_parameters"] = getattr(m, "num_parameters", 1)
            return Classified(g.ACTIVATION, op, a)
        return f

    def norm(op: str) -> Callable[[Any], Classified]:
        return lambda m: Classified(g.NORM, op, _attrs(m, *norm_fields))

    def pool(op: str) -> Callable[[Any], Classified]:
        return lambda m: Classified(g.POOL, op, _attrs(m, "kernel_size", "stride", "padding", "output_size", "dilation"))

    def conv(m: Any) -> Classified:
        attrs = _attrs(m, *conv_fields)
        if _WEIGHT_STANDARDIZED.search(type(m).__name__):
            attrs["weight_standardized"] = True
            attrs.update(_attrs(m, "scale", "eps"))  # timm's ScaledStdConv2d: gamma / sqrt(fan_in)
        return Classified(g.CONV, _base_name(m).lower(), _weight_normalization(m, attrs))

    def conv_t(m: Any) -> Classified:
        return Classified(g.CONV_TRANSPOSE, _base_name(m).lower(),
                          _weight_normalization(m, _attrs(m, *conv_fields, "output_padding")))

    table: list[tuple[type, Callable[[Any], Classified]]] = [
        (nn.Linear, lambda m: Classified(g.LINEAR, "linear",
                                         _weight_normalization(m, _attrs(m, "in_features", "out_features")))),
        (nn.Bilinear, lambda m: Classified(g.LINEAR, "bilinear", _attrs(m, "in1_features", "in2_features", "out_features"))),
        (nn.modules.conv._ConvTransposeNd, conv_t),
        (nn.modules.conv._ConvNd, conv),
        (nn.Embedding, lambda m: Classified(g.EMBEDDING, "embedding", {
            **_attrs(m, "num_embeddings", "embedding_dim", "padding_idx"), **_output_scale(m, nn.Embedding)})),
        (nn.EmbeddingBag, lambda m: Classified(g.EMBEDDING, "embedding_bag", _attrs(m, "num_embeddings", "embedding_dim", "mode"))),
        (nn.RNNBase, lambda m: Classified(g.RECURRENT, m.mode.lower(), _attrs(m, *rnn_fields))),
        (nn.RNNCellBase, lambda m: Classified(g.RECURRENT, type(m).__name__.lower(), _attrs(m, "input_size", "hidden_size", "nonlinearity"))),
        (nn.MultiheadAttention, lambda m: Classified(g.ATTENTION, "mha", _attrs(m, "embed_dim", "num_heads", "batch_first", "kdim", "vdim", "dropout"))),
        (nn.modules.batchnorm._BatchNorm, norm("batch_norm")),
        (nn.LayerNorm, norm("layer_norm")),
        (nn.GroupNorm, norm("group_norm")),
        (nn.modules.instancenorm._InstanceNorm, norm("instance_norm")),
        (nn.LocalResponseNorm, lambda m: Classified(g.NORM, "local_response_norm", _attrs(m, "size"))),
        (nn.ReLU, act("relu")), (nn.ReLU6, act("relu6")), (nn.LeakyReLU, act("leaky_relu")),
        (nn.PReLU, act("prelu")), (nn.RReLU, act("leaky_relu")), (nn.ELU, act("elu")), (nn.CELU, act("celu")),
        (nn.SELU, act("selu")), (nn.GELU, act("gelu")), (nn.SiLU, act("silu")), (nn.Mish, act("mish")),
        (nn.Hardswish, act("hardswish")), (nn.Hardsigmoid, act("hardsigmoid")), (nn.Hardtanh, act("hardtanh")),
        (nn.Sigmoid, act("sigmoid")), (nn.Tanh, act("tanh")), (nn.Softplus, act("softplus")),
        (nn.Softsign, act("softsign")), (nn.LogSigmoid, act("logsigmoid")), (nn.Tanhshrink, act("tanhshrink")),
        (nn.Softshrink, act("softshrink")), (nn.Hardshrink, act("hardshrink")), (nn.Threshold, act("threshold")),
        (nn.GLU, act("glu")), (nn.Identity, act("identity")),
        (nn.Softmax, lambda m: Classified(g.SOFTMAX, "softmax", _attrs(m, "dim"))),
        (nn.LogSoftmax, lambda m: Classified(g.SOFTMAX, "log_softmax", _attrs(m, "dim"))),
        (nn.Softmin, lambda m: Classified(g.SOFTMAX, "softmin", _attrs(m, "dim"))),
        (nn.modules.dropout._DropoutNd, lambda m: Classified(g.DROPOUT, "dropout", {"p": float(m.p)})),
        (nn.modules.pooling._AvgPoolNd, pool("avg_pool")),
        (nn.modules.pooling._MaxPoolNd, pool("max_pool")),
        (nn.modules.pooling._AdaptiveAvgPoolNd, pool("adaptive_avg_pool")),
        (nn.modules.pooling._AdaptiveMaxPoolNd, pool("adaptive_max_pool")),
        (nn.modules.pooling._LPPoolNd, pool("lp_pool")),
        (nn.Flatten, lambda m: Classified(g.RESHAPE, "flatten")),
        (nn.Unflatten, lambda m: Classified(g.RESHAPE, "unflatten")),
        (nn.Upsample, lambda m: Classified(g.RESHAPE, "upsample", _attrs(m, "scale_factor", "mode"))),
        (nn.PixelShuffle, lambda m: Classified(g.RESHAPE, "pixel_shuffle")),
        (nn.PixelUnshuffle, lambda m: Classified(g.RESHAPE, "pixel_unshuffle")),
        (nn.modules.padding._ConstantPadNd, lambda m: Classified(g.RESHAPE, "pad", {"mode": "constant"})),
        (nn.modules.padding._ReflectionPadNd, lambda m: Classified(g.RESHAPE, "pad", {"mode": "reflect"})),
        (nn.modules.padding._ReplicationPadNd, lambda m: Classified(g.RESHAPE, "pad", {"mode": "replicate"})),
        (nn.ChannelShuffle, lambda m: Classified(g.RESHAPE, "channel_shuffle")),
    ]
    rms = getattr(nn, "RMSNorm", None)
    if rms is not None:
        table.insert(0, (rms, norm("rms_norm")))
    return table


_TABLE: list | None = None

# Reparametrizations that normalize a layer's weights: weight norm (Salimans & Kingma 2016) and
# spectral norm, as parametrizations or in their older hook form (weight_g/weight_v, weight_orig/weight_u).
_WEIGHT_NORMALIZING = re.compile(r"weight_?norm|spectral_?norm", re.IGNORECASE)


def _weight_normalization(module: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` plus ``weight_normalized`` when the layer's weight is weight- or spectral-normalized."""
    normalized = (hasattr(module, "weight_g") and hasattr(module, "weight_v")) or (
        hasattr(module, "weight_orig") and hasattr(module, "weight_u"))
    plist = getattr(getattr(module, "parametrizations", None), "weight", None)
    if plist is not None:
        normalized = normalized or any(_WEIGHT_NORMALIZING.search(type(p).__name__) for p in plist)
    if normalized:
        attrs["weight_normalized"] = True
    return attrs


def _base_name(module: Any) -> str:
    """The class name, without the ``Parametrized`` prefix torch.nn.utils.parametrize gives it."""
    name = type(module).__name__
    return name[len("Parametrized"):] if name.startswith("Parametrized") and len(name) > 12 else name

# Convolutions that standardize their weights in forward (timm's StdConv2d/ScaledStdConv2d in BiT
# and NFNets, the usual WSConv2d): the layer normalizes itself, whatever its init.
_WEIGHT_STANDARDIZED = re.compile(r"std_?conv|ws_?conv|weight_?standardi[sz]", re.IGNORECASE)

# Composite torch.nn modules that have children but are analysed as one node.
_ATOMIC_WITH_CHILDREN = ("MultiheadAttention",)

# Class-name fragments of activations and norms in other libraries, most specific first.
_NAME_HINTS: tuple[tuple[str, Classified], ...] = tuple(
    (frag, Classified(kind, op)) for frag, kind, op in (
        ("rmsnorm", g.NORM, "rms_norm"), ("layernorm", g.NORM, "layer_norm"),
        ("groupnorm", g.NORM, "group_norm"), ("batchnorm", g.NORM, "batch_norm"),
        ("gelu", g.ACTIVATION, "gelu"), ("hardswish", g.ACTIVATION, "hardswish"),
        ("hard_swish", g.ACTIVATION, "hardswish"), ("hardsigmoid", g.ACTIVATION, "hardsigmoid"),
        ("hard_sigmoid", g.ACTIVATION, "hardsigmoid"), ("hardmish", g.ACTIVATION, "mish"),
        ("mish", g.ACTIVATION, "mish"), ("silu", g.ACTIVATION, "silu"), ("swish", g.ACTIVATION, "silu"),
        ("relusquared", g.ACTIVATION, "relu_squared"), ("relu6", g.ACTIVATION, "relu6"),
        ("leakyrelu", g.ACTIVATION, "leaky_relu"), ("prelu", g.ACTIVATION, "prelu"),
        ("selu", g.ACTIVATION, "selu"), ("celu", g.ACTIVATION, "celu"), ("elu", g.ACTIVATION, "elu"),
        ("relu", g.ACTIVATION, "relu"), ("logsigmoid", g.ACTIVATION, "logsigmoid"),
        ("sigmoid", g.ACTIVATION, "sigmoid"), ("tanh", g.ACTIVATION, "tanh"),
        ("softplus", g.ACTIVATION, "softplus"), ("softsign", g.ACTIVATION, "softsign"),
    )
)


# timm DropPath, Hugging Face *DropPath (ConvNextDropPath, SwinDropPath, BeitDropPath, ...),
# torchvision StochasticDepth, and the usual spellings in user code.
_NAME = re.compile(r"drop_?path|stochastic_?depth", re.IGNORECASE)


def is_stochastic_depth(module: Any) -> bool:
    """A stochastic-depth / drop-path module: torchvision's ``StochasticDepth``, or a class whose
    name says DropPath or StochasticDepth and that holds no weights of its own."""
    tv_ops = sys.modules.get("torchvision.ops")
    cls = getattr(tv_ops, "StochasticDepth", None) if tv_ops is not None else None
    if isinstance(cls, type) and isinstance(module, cls):
        return True
    if not _NAME.search(type(module).__name__):
        return False
    return next(iter(module.parameters()), None) is None  # a block named "...DropPath..." with layers is not one


def classify_module(module: Any) -> Classified | None:
    """The node kind of a module analysed as one unit (a *leaf*), or None to look inside it."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _module_table()
    has_children = next(iter(module.children()), None) is not None
    for cls, make in _TABLE:
        if isinstance(module, cls):
            if has_children and type(module).__name__ not in _ATOMIC_WITH_CHILDREN and not type(module).__module__.startswith("torch.nn"):
                return None  # e.g. timm's BatchNormAct2d: a BatchNorm subclass with an act inside
            return make(module)
    if has_children:
        return None

    einops = _einops_layer(module)
    if einops is not None:
        return einops
    if is_stochastic_depth(module):
        # one leaf, the identity: --verify measures with stochastic depth off, as at inference
        return Classified(g.DROPOUT, "stochastic_depth")
    name = type(module).__name__.lower()
    params = [p for _, p in module.named_parameters(recurse=False)]
    for frag, cls_ in _NAME_HINTS:
        if frag in name:
            if cls_.kind == g.NORM and any(p.dim() > 1 for p in params):
                return None
            if cls_.kind == g.ACTIVATION and params and cls_.op != "prelu":
                return None
            attrs = {}
            if cls_.kind == g.NORM:
                attrs = _attrs(module, "eps", "normalized_shape", "num_groups")
                attrs["library_class"] = type(module).__name__
                if _offset_scale(type(module)):
                    attrs["scale_offset"] = 1.0
            return Classified(cls_.kind, cls_.op, attrs)
    return None


def _einops_layer(module: Any) -> Classified | None:
    """einops' layers (vit-pytorch's patch embedding: ``Rearrange("b c (h p1) (w p2) -> b (h w) (p1
    p2 c)")``): one leaf each. fx cannot trace into them (their recipe is looked up by the input's
    ndim), and a rearrangement is a reshape; ``Reduce`` is a pooling of its reduction."""
    cls = type(module)
    if not cls.__module__.startswith("einops"):
        return None
    if cls.__name__ == "Rearrange":
        return Classified(g.RESHAPE, "rearrange", {"pattern": getattr(module, "pattern", None)})
    if cls.__name__ == "Reduce":
        reduction = getattr(module, "reduction", "mean")
        op = {"mean": "mean", "sum": "sum", "max": "max", "min": "max"}.get(reduction if isinstance(reduction, str) else "")
        return Classified(g.POOL, op, {"pattern": getattr(module, "pattern", None)}) if op else None
    return None


# ``super().forward(x) * self.embed_scale``: a subclass scaling its output by a constant attribute
_OUTPUT_SCALE = re.compile(r"super\(\)\.forward\([^)]*\)\s*\*\s*self\.(\w+)")


def _output_scale(module: Any, base: type) -> dict[str, float]:
    """{"output_scale": s} for a subclass whose forward multiplies the base's output by a constant
    attribute (Gemma's scaled word embedding: sqrt(hidden_size)), read from its code."""
    cls = type(module)
    if cls.forward is base.forward:
        return {}
    import inspect

    try:
        match = _OUTPUT_SCALE.search(inspect.getsource(cls.forward))
    except (OSError, TypeError):
        return {}
    name = match.group(1) if match else None
    value = getattr(module, name, None) if name else None
    if getattr(value, "numel", None) is not None and value.numel() == 1:
        if value.is_meta:  # a buffer on the meta device: the same number kept as a plain float
            value = next((v for k, v in vars(module).items() if k.endswith(name) and isinstance(v, float)), None)
        else:
            value = float(value)
    return {"output_scale": float(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


# ``x * (1 + self.weight)``: the scale is one plus a zero-initialized parameter (Gemma's RMSNorm,
# several others), so a weight of zeros is a scale of one, not a structural zero.
_OFFSET_SCALE = re.compile(r"\b1(?:\.0*)?\s*\+\s*self\.weight\b|\bself\.weight(?:\.\w+\([^)]*\))*\s*\+\s*1(?:\.0*)?\b")
_offset_cache: dict[type, bool] = {}


def _offset_scale(cls: type) -> bool:
    """Whether a library norm's forward multiplies by ``1 + self.weight`` (read from its code)."""
    if cls not in _offset_cache:
        import inspect

        try:
            src = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            src = ""
        _offset_cache[cls] = bool(_OFFSET_SCALE.search(src))
    return _offset_cache[cls]


# --- functions: fx call_function/call_method targets, __torch_function__ funcs, aten ops -----

def call_name(target: Any) -> str:
    """A canonical lower-case name: torch.tanh, F.tanh, Tensor.tanh, 'tanh', aten.tanh -> 'tanh'."""
    if isinstance(target, str):
        name = target
    else:
        name = getattr(target, "_opname", None) or getattr(target, "__name__", None) or str(target)
    name = name.strip("_")
    if name.startswith("r") and name[1:] in ("add", "sub", "mul", "truediv", "matmul"):
        name = name[1:]
    if name.startswith("i") and name[1:] in ("add", "sub", "mul", "truediv"):
        name = name[1:]
    if name.endswith("_") and name[:-1] in _FUNCTIONS:
        name = name[:-1]
    return name


def _fn(kind: str, op: str | None = None, **attr_args: tuple[int, str, Any]) -> tuple[str, str | None, dict]:
    return (kind, op, attr_args)


# name -> (kind, op (None: same as name), {attr: (positional index, keyword, default)})
_FUNCTIONS: dict[str, tuple[str, str | None, dict]] = {
    "linear": _fn(g.LINEAR), "bilinear": _fn(g.LINEAR),
    "addmm": _fn(g.MATMUL), "matmul": _fn(g.MATMUL), "mm": _fn(g.MATMUL), "bmm": _fn(g.MATMUL),
    "baddbmm": _fn(g.MATMUL), "einsum": _fn(g.MATMUL), "tensordot": _fn(g.MATMUL),
    # a sparse matrix (a graph's adjacency) times features: the same expectations as a dense one
    "sparse_mm": _fn(g.MATMUL, "mm"), "spmm": _fn(g.MATMUL, "mm"), "smm": _fn(g.MATMUL, "mm"),
    "conv1d": _fn(g.CONV, stride=(3, "stride", 1), groups=(6, "groups", 1)),
    "conv2d": _fn(g.CONV, stride=(3, "stride", 1), groups=(6, "groups", 1)),
    "conv3d": _fn(g.CONV, stride=(3, "stride", 1), groups=(6, "groups", 1)),
    "conv_transpose1d": _fn(g.CONV_TRANSPOSE, stride=(3, "stride", 1), groups=(6, "groups", 1)),
    "conv_transpose2d": _fn(g.CONV_TRANSPOSE, stride=(3, "stride", 1), groups=(6, "groups", 1)),
    "conv_transpose3d": _fn(g.CONV_TRANSPOSE, stride=(3, "stride", 1), groups=(6, "groups", 1)),
    "embedding": _fn(g.EMBEDDING),
    "batch_norm": _fn(g.NORM), "native_batch_norm": _fn(g.NORM, "batch_norm"),
    "_native_batch_norm_legit_functional": _fn(g.NORM, "batch_norm"),
    "native_batch_norm_legit_functional": _fn(g.NORM, "batch_norm"),
    "native_batch_norm_legit": _fn(g.NORM, "batch_norm"),
    "native_batch_norm_legit_no_training": _fn(g.NORM, "batch_norm"),
    "layer_norm": _fn(g.NORM), "native_layer_norm": _fn(g.NORM, "layer_norm"),
    # F.group_norm(x, num_groups, weight, bias, eps) (timm's GroupNormAct); aten's native_group_norm
    # (x, weight, bias, N, C, HxW, group, eps)
    "group_norm": _fn(g.NORM, num_groups=(1, "num_groups", None)),
    "native_group_norm": _fn(g.NORM, "group_norm", num_groups=(6, "group", None)),
    "instance_norm": _fn(g.NORM), "rms_norm": _fn(g.NORM), "fused_rms_norm": _fn(g.NORM, "rms_norm"),
    "normalize": _fn(g.NORM, "l2_normalize"),
    "relu": _fn(g.ACTIVATION), "relu6": _fn(g.ACTIVATION),
    "leaky_relu": _fn(g.ACTIVATION, slope=(1, "negative_slope", 0.01)),
    "prelu": _fn(g.ACTIVATION), "prelu_kernel": _fn(g.ACTIVATION, "prelu"),
    "rrelu": _fn(g.ACTIVATION, "leaky_relu"),
    "elu": _fn(g.ACTIVATION, alpha=(1, "alpha", 1.0), scale=(2, "scale", 1.0)),
    "celu": _fn(g.ACTIVATION, alpha=(1, "alpha", 1.0)), "selu": _fn(g.ACTIVATION),
    "gelu": _fn(g.ACTIVATION, approximate=(-1, "approximate", "none")),
    "silu": _fn(g.ACTIVATION), "mish": _fn(g.ACTIVATION), "hardswish": _fn(g.ACTIVATION),
    "hardsigmoid": _fn(g.ACTIVATION),
    "hardtanh": _fn(g.ACTIVATION, min_val=(1, "min_val", -1.0), max_val=(2, "max_val", 1.0)),
    "clamp": _fn(g.OTHER, "clamp"), "clip": _fn(g.OTHER, "clamp"),
    "sigmoid": _fn(g.ACTIVATION), "tanh": _fn(g.ACTIVATION),
    "softplus": _fn(g.ACTIVATION, beta=(1, "beta", 1.0)), "softsign": _fn(g.ACTIVATION),
    "logsigmoid": _fn(g.ACTIVATION), "log_sigmoid": _fn(g.ACTIVATION, "logsigmoid"),
    "log_sigmoid_forward": _fn(g.ACTIVATION, "logsigmoid"),
    "tanhshrink": _fn(g.ACTIVATION), "softshrink": _fn(g.ACTIVATION), "hardshrink": _fn(g.ACTIVATION),
    "glu": _fn(g.ACTIVATION, dim=(1, "dim", -1)), "threshold": _fn(g.ACTIVATION),
    "softmax": _fn(g.SOFTMAX, dim=(1, "dim", -1)), "_softmax": _fn(g.SOFTMAX, "softmax", dim=(1, "dim", -1)),
    "log_softmax": _fn(g.SOFTMAX, dim=(1, "dim", -1)), "_log_softmax": _fn(g.SOFTMAX, "log_softmax", dim=(1, "dim", -1)),
    "softmin": _fn(g.SOFTMAX),
    "scaled_dot_product_attention": _fn(g.ATTENTION, "sdpa", is_causal=(5, "is_causal", False)),
    "scaled_dot_product_flash_attention_for_cpu": _fn(g.ATTENTION, "sdpa"),
    "scaled_dot_product_efficient_attention": _fn(g.ATTENTION, "sdpa"),
    "scaled_dot_product_flash_attention": _fn(g.ATTENTION, "sdpa"),
    "dropout": _fn(g.DROPOUT, p=(1, "p", 0.5)), "native_dropout": _fn(g.DROPOUT, "dropout", p=(1, "p", 0.5)),
    "dropout1d": _fn(g.DROPOUT, "dropout", p=(1, "p", 0.5)), "dropout2d": _fn(g.DROPOUT, "dropout", p=(1, "p", 0.5)),
    "dropout3d": _fn(g.DROPOUT, "dropout", p=(1, "p", 0.5)), "alpha_dropout": _fn(g.DROPOUT, "dropout", p=(1, "p", 0.5)),
    "feature_dropout": _fn(g.DROPOUT, "dropout", p=(1, "p", 0.5)),
    "avg_pool1d": _fn(g.POOL, "avg_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "avg_pool2d": _fn(g.POOL, "avg_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "avg_pool3d": _fn(g.POOL, "avg_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "max_pool1d": _fn(g.POOL, "max_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "max_pool2d": _fn(g.POOL, "max_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "max_pool3d": _fn(g.POOL, "max_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "max_pool2d_with_indices": _fn(g.POOL, "max_pool", kernel_size=(1, "kernel_size", None), stride=(2, "stride", None)),
    "adaptive_avg_pool1d": _fn(g.POOL, "adaptive_avg_pool"), "adaptive_avg_pool2d": _fn(g.POOL, "adaptive_avg_pool"),
    "adaptive_avg_pool3d": _fn(g.POOL, "adaptive_avg_pool"), "_adaptive_avg_pool2d": _fn(g.POOL, "adaptive_avg_pool"),
    "adaptive_max_pool1d": _fn(g.POOL, "adaptive_max_pool"), "adaptive_max_pool2d": _fn(g.POOL, "adaptive_max_pool"),
    "mean": _fn(g.POOL, "mean", dim=(1, "dim", None)), "sum": _fn(g.POOL, "sum", dim=(1, "dim", None)),
    "amax": _fn(g.POOL, "max"),
    "add": _fn(g.ADD, alpha=(2, "alpha", 1)), "sub": _fn(g.ADD, "sub"), "rsub": _fn(g.ADD, "sub"),
    "mul": _fn(g.MUL), "truediv": _fn(g.MUL, "div"), "div": _fn(g.MUL, "div"),
    "floordiv": _fn(g.OTHER), "neg": _fn(g.MUL, "neg"),
    "cat": _fn(g.CONCAT, dim=(1, "dim", 0)), "concat": _fn(g.CONCAT, "cat", dim=(1, "dim", 0)),
    "concatenate": _fn(g.CONCAT, "cat", dim=(1, "dim", 0)), "stack": _fn(g.CONCAT, "stack", dim=(1, "dim", 0)),
    "hstack": _fn(g.CONCAT, "cat"), "vstack": _fn(g.CONCAT, "cat"),
    "interpolate": _fn(g.RESHAPE, "upsample"), "upsample_nearest2d": _fn(g.RESHAPE, "upsample"),
    "upsample_bilinear2d": _fn(g.RESHAPE, "upsample"), "pad": _fn(g.RESHAPE, "pad", mode=(2, "mode", "constant")),
    "constant_pad_nd": _fn(g.RESHAPE, "pad"), "pixel_shuffle": _fn(g.RESHAPE),
    "reflection_pad1d": _fn(g.RESHAPE, "pad", mode=(9, "_", "reflect")),
    "reflection_pad2d": _fn(g.RESHAPE, "pad", mode=(9, "_", "reflect")),
    "reflection_pad3d": _fn(g.RESHAPE, "pad", mode=(9, "_", "reflect")),
    "replication_pad1d": _fn(g.RESHAPE, "pad", mode=(9, "_", "replicate")),
    "replication_pad2d": _fn(g.RESHAPE, "pad", mode=(9, "_", "replicate")),
    "replication_pad3d": _fn(g.RESHAPE, "pad", mode=(9, "_", "replicate")),
    "circular_pad2d": _fn(g.RESHAPE, "pad", mode=(9, "_", "circular")),
}

# Pure data movement: the gradient passes through unchanged in scale.
for _name in ("view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "contiguous",
              "squeeze", "unsqueeze", "expand", "expand_as", "repeat", "clone", "to", "_to_copy",
              "type_as", "float", "half", "bfloat16", "double", "type", "detach_copy", "alias",
              "getitem", "slice", "select", "narrow", "split", "chunk", "unbind", "split_with_sizes",
              "split_tensor", "movedim", "swapaxes", "roll", "flip", "view_as", "reshape_as",
              "lift_fresh_copy", "unsafe_view", "_unsafe_view", "as_strided", "tensor_split",
              "index_select", "gather", "masked_fill", "where", "tril", "triu", "rearrange",
              "getattr"):  # x.T, x.mT, a max's .values: tensor attributes that are views of x
    _FUNCTIONS.setdefault(_name, _fn(g.RESHAPE, _name))

# ``x.reshape_as(other)`` and friends read only ``other``'s shape or dtype: no gradient reaches it.
SHAPE_ONLY_AFTER_FIRST = frozenset({"reshape_as", "view_as", "expand_as", "type_as"})

# Calls that make no differentiable tensor from the graph (shape queries, dtype tests, in-place
# bookkeeping) and calls that stop the gradient.
NON_TENSOR = frozenset({"size", "dim", "numel", "shape", "dtype", "device", "is_floating_point",
                        "item", "tolist", "get", "__get__", "stride", "storage_offset", "is_contiguous",
                        "requires_grad_", "data_ptr", "element_size", "ndimension", "nelement",
                        "sym_size", "sym_numel", "sym_stride", "_assert_tensor_metadata",
                        "_assert_async", "_assert_scalar", "sym_constrain_range_for_size",
                        "empty_like", "zeros_like", "ones_like", "full_like",
                        # fresh tensors that borrow only dtype/device/shape from their input
                        # (timm's drop_path: x.new_empty(shape).bernoulli_(keep)): no gradient
                        "new_empty", "new_zeros", "new_ones", "new_full", "new_tensor",
                        "rand_like", "randn_like", "randint_like", "empty_strided"})
# (``detach`` is not here: it is a node of its own, "other"/"detach", that passes the statistics
# forward and no gradient back, so what follows it is still estimated)
STOP_GRADIENT = frozenset({"argmax", "argmin", "eq", "ne", "lt", "gt", "le", "ge",
                           "logical_not", "logical_and", "logical_or", "isnan", "isinf", "isfinite",
                           "sign", "round", "floor", "ceil", "bool", "long", "int", "arange",
                           "zeros", "ones", "full", "empty", "randn", "rand", "randint", "tensor",
                           "bernoulli", "multinomial", "normal", "uniform", "exponential", "poisson",
                           "cumsum_int", "bitwise_not", "bitwise_and", "bitwise_or"})


def classify_call(name: str, args: tuple | list, kwargs: dict) -> Classified:
    """Classify a function or method call by its canonical name; unknown names are "other"."""
    entry = _FUNCTIONS.get(name)
    if name in ("max", "min") and (len(args) < 2 or isinstance(args[1], int)) and "other" not in kwargs:
        # x.max() / x.max(dim) reduce (the latter returns (values, indices)); max(a, b) of two
        # tensors is elementwise and stays "other". Min reduces like max, by symmetry.
        return Classified(g.POOL, "max", {"function": name})
    if entry is None:
        return Classified(g.OTHER, name)
    kind, op, spec = entry
    attrs: dict[str, Any] = {}
    for attr, (pos, kw, default) in spec.items():
        if kw in kwargs:
            value = kwargs[kw]
        elif 0 <= pos < len(args):
            value = args[pos]
        else:
            value = default
        if isinstance(value, (int, float, str, bool, tuple, list)) or value is None:
            attrs[attr] = tuple(value) if isinstance(value, list) else value
    return Classified(kind, op or name, attrs)
