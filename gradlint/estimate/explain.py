"""Why: the log-attenuation of a layer split into its causes, in words.

``propagate`` books every backward log-gain to its mechanism; here those log10 contributions
become "90% of the decay comes from sigmoid derivatives" (shares of the contributions that push
in the direction of the total), with what pushes the other way named as an offset.
"""

from __future__ import annotations


from .propagate import INPUT_SCALE, MERGE, SHAPE

LABELS = {
    "weights": "weight scale (init)",
    "normalization": "normalization layers",
    MERGE: "skip connections and branches (gradients adding up)",
    INPUT_SCALE: "signal scale at the layers' inputs",
    SHAPE: "layer sizes and weight sharing",
    "pooling": "pooling",
    "dropout": "dropout",
    "attention": "attention averaging",
    "scaling": "constant scalings",
    "gating": "multiplicative gates",
    "concatenation": "concatenation",
    "softmax": "softmax",
    "reshape": "reshaping",
    "unmodelled ops": "ops the estimate does not model",
}


def label(cause: str) -> str:
    if cause in LABELS:
        return LABELS[cause]
    if cause.endswith(" through time"):
        return f"{cause.split(' ')[0].upper()} recurrence through time"
    return cause


def split(causes: dict[str, float], total: float | None = None) -> tuple[list[tuple[str, float, float]], list[tuple[str, float]]]:
    """([(cause, log10 contribution, share of the push)], [(cause, offsetting contribution)]).

    The push is the direction of the total (decay when it is negative); shares are of the sum of
    the contributions in that direction, so they add up to 100%.
    """
    if total is None:
        total = sum(causes.values())
    sign = -1.0 if total < 0 else 1.0
    push = [(k, v) for k, v in causes.items() if v * sign > 1e-9]
    against = [(k, v) for k, v in causes.items() if v * sign < -1e-9]
    mass = sum(abs(v) for _, v in push) or 1.0
    push.sort(key=lambda kv: -abs(kv[1]))
    against.sort(key=lambda kv: -abs(kv[1]))
    return [(k, v, abs(v) / mass) for k, v in push], against


def why(causes: dict[str, float], total: float, limit: int = 3) -> str:
    """'92% of the decay comes from sigmoid derivatives (-15.1 decades), 8% from weight scale
    (init) (-1.3); partly offset by normalization layers (+0.4)'."""
    push, against = split(causes, total)
    if not push:
        return ""
    word = "decay" if total < 0 else "growth"
    parts = [f"{share:.0%} of the {word} comes from {label(k)} ({v:+.1f} decades)" if i == 0
             else f"{share:.0%} from {label(k)} ({v:+.1f})" for i, (k, v, share) in enumerate(push[:limit])]
    text = ", ".join(parts)
    if against and abs(against[0][1]) >= 0.1:
        text += "; partly offset by " + ", ".join(f"{label(k)} ({v:+.1f})" for k, v in against[:2])
    return text


def dominant(causes: dict[str, float], total: float) -> str | None:
    push, _ = split(causes, total)
    return push[0][0] if push else None
