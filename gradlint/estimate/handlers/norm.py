"""Normalization layers, in train mode (the mode the contract measures in).

Each divides by a standard deviation over some group of entries; the backward gain is
gamma^2 / (that variance), reduced by the directions the normalization projects out. What the
groups subtract decides whether a constant offset is signal: BatchNorm removes per-channel
constants (over the batch), LayerNorm only the per-token mean, so sigmoid's 0.5 pushed through W
counts as variance for LayerNorm (docs/estimator.md: LayerNorm does not rescue a sigmoid stack).
"""

from __future__ import annotations

import math

from ...ir import graph as g
from ..context import Unsupported, numel
from ..registry import Step, handles
from ..signals import Grad, Signal


def _affine_params(node, ctx):
    """(E[gamma^2], E[gamma], E[beta^2], E[beta], gamma stats) with gamma = 1, beta = 0 when absent."""
    gamma = ctx.param(node, "weight") or ctx.param(node, "scale")
    beta = ctx.param(node, "bias") or ctx.param(node, "scale1")
    g2, gm = (gamma.second, gamma.mean) if gamma is not None else (1.0, 1.0)
    offset = node.attrs.get("scale_offset")
    if gamma is not None and isinstance(offset, (int, float)) and offset:
        # the module multiplies by (offset + weight) (Gemma's RMSNorm: 1 + a zero-initialized weight)
        g2, gm = offset * offset + 2 * offset * gamma.mean + gamma.second, offset + gamma.mean
        gamma = None if g2 > 0 else gamma
    b2, bm = (beta.second, beta.mean) if beta is not None else (0.0, 0.0)
    return g2, gm, b2, bm, gamma


def _eps(node, default: float = 1e-5) -> float:
    e = node.attrs.get("eps")
    return float(e) if isinstance(e, (int, float)) else default


def _zero(node, gamma) -> str | None:
    if gamma is not None and gamma.zero:
        return f"{node.module or 'a normalization'}'s scale (weight) is all zeros (zero-initialized)"
    return None


def inverse_variance_factor(n_eff: float) -> float:
    """E[1/sigma_hat^2] * (projection) relative to 1/sigma^2, for a variance estimated from n_eff
    entries: the normalization divides by its own noisy estimate, so the expected squared gradient
    gets E[1/sigma_hat^2] = n/((n-3) sigma^2) (Jensen: more than 1/sigma^2), and the backward projects
    out the mean and x-hat directions, (n-2)/n: together (n-2)/(n-3). BatchNorm + ReLU, width 256,
    6 seeds: measured 1.78 / 1.59 / 1.52 / 1.49 / 1.47 per layer at batch 8 / 16 / 32 / 64 / 256;
    pi/(pi-1) * (n-2)/(n-3) = 1.76 / 1.58 / 1.52 / 1.49 / 1.47. For a 32-channel GroupNorm this is
    +7% per layer, 0.7 decades over a 50-layer stack."""
    if n_eff <= 4:
        return 2.0
    return (n_eff - 2.0) / (n_eff - 3.0)


PATTERN_DOF = 12  # effective dimensions of a sample-shared spatial pattern (measured 7-24, see below)


def channel_variance_factor(n_eff: float, varying: float, pattern: float, positions: int) -> float:
    """E[gamma^2 / sigma_j^2] relative to gamma^2 / E[sigma_j^2] for a per-channel variance made of a
    part that varies over the samples (n_eff entries) and a spatial pattern shared by all samples.

    The channels' variances scatter like chi^2 with r degrees of freedom (Satterthwaite's r for the
    sum of the two parts), so the mean inverse variance is r/(r-2) above the inverse mean variance;
    the backward also projects out two of the n entries' directions. A pattern is low-rank: measured
    E[1/sigma^2] E[sigma^2] = 1.1-1.4 at BatchNorms of pattern-dominated 8x8 and 4x4 maps, i.e.
    7-24 effective dimensions, whatever the number of positions.
    """
    r1 = max(n_eff - 1.0, 1.0)
    r2 = float(min(max(positions - 1, 1), PATTERN_DOF))
    total = varying + pattern
    if total <= 0:
        return 1.0
    r = total * total / (varying * varying / r1 + (pattern * pattern / r2 if pattern > 0 else 0.0))
    if r <= 2.5 or n_eff <= 3:
        return 2.0
    return (n_eff - 2.0) / (n_eff - 1.0) * r / (r - 2.0)


def _normalized(x: Signal, removed: float, var: float, g2: float, gm: float, b2: float, bm: float,
                c_removed: float, p_removed: float) -> Signal:
    """Output statistics after subtracting a group mean (energy ``removed``) and dividing by sqrt(var)."""
    inv = 1.0 / var if var > 0 else 0.0
    c_hat = max(x.c - c_removed, 0.0) * inv
    p_hat = max(x.p - p_removed, 0.0) * inv
    m_hat = max(x.m - removed, 0.0) * inv
    return Signal(g2 * m_hat + b2, bm, g2 * c_hat + b2, g2 * p_hat + b2, g2 * x.s * inv).clean()


@handles(g.NORM, "batch_norm")
def batch_norm(node, ins, ctx) -> Step:
    """Per-channel statistics over (batch, positions). Backward gain gamma^2 / (biased batch
    variance): with ReLU this is the ~1.47x per layer growth of deep BN nets (Yang et al. 2019)."""
    x = ins[0]
    shape = ctx.in_shape(node, 0)
    if not shape or len(shape) < 2:
        raise Unsupported("batch norm without an input shape")
    channels = shape[1]
    positions = max(1, numel(shape[2:]))
    count = max(2, numel(shape) // channels)  # entries per channel: batch x positions
    samples = max(2, count // positions)
    g2, gm, b2, bm, gamma = _affine_params(node, ctx)
    between = max(x.m - x.c, 0.0)  # per-channel variance over the batch
    # positions of one sample share part of their value: fewer independent entries per channel
    within = max(x.p - x.c, 0.0) / between if between > 0 else 0.0
    n_eff = count / (1.0 + (positions - 1) * within)
    # the batch mean of a channel is noisy: the biased variance misses its share
    mean_noise = between / n_eff
    var = max(between - mean_noise, 0.0) + _eps(node)
    out = _normalized(x, x.c + mean_noise, var, g2, gm, b2, bm, x.c, x.c + mean_noise)
    pattern = min(x.s, between)
    gain = g2 / (between + _eps(node)) * channel_variance_factor(n_eff, between - pattern, pattern, positions)

    def backward(grad: Grad) -> list[Grad]:
        # the gradient leaves summing to zero over (batch, positions) in every channel
        return [Grad(grad.g * gain, grad.rho * (1.0 - 1.0 / samples), 1.0)] + [Grad(0.0)] * (len(node.inputs) - 1)

    return Step(out, backward, cause="normalization", lipschitz=[math.sqrt(g2 / var)] + [0.0] * (len(node.inputs) - 1),
                bound_is_estimate=True, zero=_zero(node, gamma), info={"var": var})


def _feature_size(node, shape) -> int:
    ns = node.attrs.get("normalized_shape")
    if isinstance(ns, tuple) and ns and all(isinstance(v, int) for v in ns):
        return math.prod(ns)
    if isinstance(ns, int):
        return ns
    return shape[-1] if shape else 1


@handles(g.NORM, "layer_norm")
def layer_norm(node, ins, ctx) -> Step:
    """Per-token statistics over the normalized (feature) dims."""
    x = ins[0]
    shape = ctx.in_shape(node, 0)
    d = max(_feature_size(node, shape), 1)
    g2, gm, b2, bm, gamma = _affine_params(node, ctx)
    mu2 = x.mu * x.mu
    mean2 = mu2 + x.var / d  # energy of the per-token feature mean
    var = max(x.m - mean2, 0.0) + _eps(node)
    # two samples' (or two positions') token means share only what their features share: removing
    # each token's own mean takes (c - mu^2)/d of the cross-sample part, not var/d (that is noise)
    out = _normalized(x, mean2, var, g2, gm, b2, bm, mu2 + max(x.c - mu2, 0.0) / d, mu2 + max(x.p - mu2, 0.0) / d)
    gain = g2 / (x.var + _eps(node)) * inverse_variance_factor(d)
    return Step(out, lambda grad: [grad.like(grad.g * gain)] + [Grad(0.0)] * (len(node.inputs) - 1),
                cause="normalization", lipschitz=[math.sqrt(g2 / var)] + [0.0] * (len(node.inputs) - 1),
                bound_is_estimate=True, zero=_zero(node, gamma), info={"var": var})


@handles(g.NORM, "rms_norm")
def rms_norm(node, ins, ctx) -> Step:
    x = ins[0]
    d = max(_feature_size(node, ctx.in_shape(node, 0)), 1)
    g2, gm, b2, bm, gamma = _affine_params(node, ctx)
    ms = x.m + _eps(node, 1e-6)
    out = Signal(g2 * x.m / ms, gm * x.mu / math.sqrt(ms), g2 * x.c / ms, g2 * x.p / ms, g2 * x.s / ms).clean()
    # a mean of squares over d entries, no centering: E[1/ms_hat] ~ d/(d-2) and one projected direction
    gain = g2 / ms * ((d - 1.0) / (d - 2.0) if d > 3 else 2.0)
    return Step(out, lambda grad: [Grad(grad.g * gain, grad.rho)] + [Grad(0.0)] * (len(node.inputs) - 1),
                cause="normalization", lipschitz=[math.sqrt(g2 / ms)] + [0.0] * (len(node.inputs) - 1),
                bound_is_estimate=True, zero=_zero(node, gamma))


def _group_norm(node, ins, ctx, groups: int) -> Step:
    """Per (sample, group) statistics over (channels of the group) x positions."""
    x = ins[0]
    shape = ctx.in_shape(node, 0)
    if not shape or len(shape) < 2:
        raise Unsupported("group norm without an input shape")
    channels = shape[1]
    positions = max(1, numel(shape[2:]))
    per_group = max(1, channels // max(groups, 1))
    entries = per_group * positions
    g2, gm, b2, bm, gamma = _affine_params(node, ctx)
    # the group mean: the global mean, plus the per-(sample, channel) means averaged over the group
    channel_mean2 = max(x.p - x.mu * x.mu, 0.0) + max(x.m - x.p, 0.0) / positions
    mean2 = x.mu * x.mu + channel_mean2 / per_group
    var = max(x.m - mean2, 0.0) + _eps(node)
    out = _normalized(x, mean2, var, g2, gm, b2, bm, x.mu * x.mu + max(x.c - x.mu * x.mu, 0.0) / per_group, mean2)
    population = max(x.m - x.mu * x.mu - max(x.p - x.mu * x.mu, 0.0) / per_group, 0.0) + _eps(node)
    # the group's entries: correlated positions of one channel count less. What the group mean
    # removes is no correlation: a per-(sample, channel) constant is gone entirely when the group
    # is one channel (InstanceNorm: with it counted, 8x8 maps after ReLU had n_eff ~3 and a gain 2x
    # too high per layer), and leaves (1 - 1/channels per group) of itself otherwise.
    shared = max(x.p - x.mu * x.mu, 0.0) * (1.0 - 1.0 / per_group)
    within = min(shared / population, 1.0) if population > 0 else 0.0
    n_eff = entries / (1.0 + (positions - 1) * within)
    gain = g2 / population * inverse_variance_factor(n_eff)
    keep = 1.0 - 1.0 / per_group  # the per-sample group mean of the gradient is projected out
    return Step(out, lambda grad: [Grad(grad.g * gain, grad.rho * keep, grad.centered)] + [Grad(0.0)] * (len(node.inputs) - 1),
                cause="normalization", lipschitz=[math.sqrt(g2 / var)] + [0.0] * (len(node.inputs) - 1),
                bound_is_estimate=True, zero=_zero(node, gamma), info={"var": var})


@handles(g.NORM, "group_norm")
def group_norm(node, ins, ctx) -> Step:
    groups = node.attrs.get("num_groups")
    if not isinstance(groups, int):
        raise Unsupported("group norm without num_groups")
    return _group_norm(node, ins, ctx, groups)


@handles(g.NORM, "instance_norm")
def instance_norm(node, ins, ctx) -> Step:
    shape = ctx.in_shape(node, 0)
    return _group_norm(node, ins, ctx, shape[1] if shape and len(shape) > 1 else 1)


@handles(g.NORM, "l2_normalize")
def l2_normalize(node, ins, ctx) -> Step:
    """F.normalize: x / ||x|| over dim 1 (each output has unit norm over that dim)."""
    x = ins[0]
    shape = ctx.in_shape(node, 0)
    d = shape[1] if shape and len(shape) > 1 else 1
    m = x.m if x.m > 0 else 1.0
    out = Signal(1.0 / d, x.mu / math.sqrt(d * m), x.c / (d * m), x.p / (d * m)).clean()
    gain = max(1.0 - 1.0 / d, 0.0) / (d * m)
    return Step(out, lambda grad: [Grad(grad.g * gain, grad.rho)] + [Grad(0.0)] * (len(node.inputs) - 1),
                cause="normalization", lipschitz=[math.sqrt(1.0 / (d * m))] + [0.0] * (len(node.inputs) - 1),
                bound_is_estimate=True)
