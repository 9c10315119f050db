"""The op vocabulary: which activations exist, which saturate, and how steep they can be.

One definition for every stage: capture classifies with it, the estimator and ``--verify``
probe with it, the rules name it. Node kinds themselves live in ``graph.py``.
"""

from __future__ import annotations

# Activations the capture classifies (and the estimator models); anything else is an "other" op.
ACTIVATIONS = frozenset({
    "identity", "relu", "leaky_relu", "prelu", "relu6", "elu", "celu", "selu", "gelu", "silu",
    "mish", "hardswish", "hardsigmoid", "hardtanh", "sigmoid", "tanh", "softplus", "softsign",
    "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "glu", "relu_squared", "threshold",
})

# Saturating activations, with sup |phi'| (docs/estimator.md, "Activation constants"): their
# derivative is bounded well below 1, or is ~0 over most of the line once the input is large.
SATURATING_MAX_DERIVATIVE = {
    "sigmoid": 0.25, "hardsigmoid": 1 / 6, "tanh": 1.0, "hardtanh": 1.0, "softsign": 1.0, "logsigmoid": 1.0,
}
SATURATING = frozenset(SATURATING_MAX_DERIVATIVE)

# ReLU-family units that pass no gradient where they are off (--verify counts dead units).
RELU_FAMILY = frozenset({"relu", "relu6"})
