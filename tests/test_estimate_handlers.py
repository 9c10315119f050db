"""Handlers on small inputs with known answers, and the registry's bookkeeping."""

from __future__ import annotations

import math

import pytest

from gradlint.estimate import registry
from gradlint.estimate.context import Context
from gradlint.estimate.handlers import attention, dense
from gradlint.estimate.signals import Grad, Signal
from gradlint.ir import graph as g
from gradlint.ir.graph import LayerGraph


class _NoWeights:
    def stats(self, *a, **k):
        return None

    def numel(self, name):
        return 0

    def shape(self, name):
        return ()

    unknown: list = []


def _one(kind, op="", in_shapes=((64, 16),), out_shape=(64, 16), attrs=None, producer_kind=g.LINEAR):
    """A graph: producer(s) -> node; returns (graph, node, ctx)."""
    lg = LayerGraph()
    srcs = [lg.add(producer_kind, "x", out_shape=s).id for s in in_shapes]
    node = lg.add(kind, op, srcs, in_shapes=list(in_shapes), out_shape=out_shape, attrs=dict(attrs or {}))
    lg.add(g.OUTPUT, "output", [node.id], in_shapes=[out_shape])
    ctx = Context(lg, _NoWeights(), batch=in_shapes[0][0])
    return lg, node, ctx


def run(kind, op, ins, **kw):
    lg, node, ctx = _one(kind, op, **kw)
    ctx.signals = ins + [Signal(0)] * 0
    handler = registry.lookup(kind, op)
    return handler(node, ins, ctx)


def test_batch_norm_gain_is_the_expected_inverse_batch_variance():
    # a ReLU output after a Linear: m = 2, per-feature constant c = 0.5, batch 64: the variance over
    # the batch is 1.5, estimated from 64 entries: E[1/var_hat] with the projection, (n-2)/(n-3)
    step = run(g.NORM, "batch_norm", [Signal(2.0, 0.0, 0.5, 0.5)], in_shapes=((64, 16),))
    assert step.backward(Grad(1.0))[0].g == pytest.approx(62 / 61 / (1.5 + 1e-5), rel=1e-9)
    assert step.out.m == pytest.approx(1.0, rel=1e-4) and step.out.c == pytest.approx(0.0, abs=1e-9)
    assert step.backward(Grad(1.0))[0].centered == 1.0  # sums to zero over the batch


def test_layer_norm_counts_a_constant_offset_as_variance():
    """sigmoid's 0.5 pushed through W: LayerNorm's gain is 1/m, not 1/Var over the batch."""
    d = 256
    x = Signal(0.29, 0.0, 0.25, 0.25)
    step = run(g.NORM, "layer_norm", [x], in_shapes=((64, d),), out_shape=(64, d), attrs={"normalized_shape": (d,)})
    gain = step.backward(Grad(1.0))[0].g
    assert gain == pytest.approx((d - 2) / (d - 3) / (0.29 + 1e-5), rel=1e-6)
    assert step.out.c / step.out.m > 0.8  # the offset is still most of the output


def test_residual_add_sums_second_moments_and_copies_the_gradient():
    step = run(g.ADD, "add", [Signal(2.0, 1.0, 1.0, 1.0), Signal(0.5, 0.4, 0.16, 0.16)],
               in_shapes=((8, 4), (8, 4)), out_shape=(8, 4))
    assert step.out.m == pytest.approx(2.0 + 0.5 + 2 * 1.0 * 0.4)
    assert [x.g for x in step.backward(Grad(3.0))] == [3.0, 3.0]


def test_x_plus_x_adds_coherently():
    lg = LayerGraph()
    a = lg.add(g.LINEAR, "x", out_shape=(8, 4))
    node = lg.add(g.ADD, "add", [a.id, a.id], in_shapes=[(8, 4), (8, 4)], out_shape=(8, 4))
    ctx = Context(lg, _NoWeights(), 8)
    step = registry.lookup(g.ADD, "add")(node, [Signal(1.0), Signal(1.0)], ctx)
    assert step.out.m == pytest.approx(4.0)
    assert sum(x.g for x in step.backward(Grad(1.0))) == pytest.approx(4.0)


def test_global_average_pooling_makes_the_gradient_coherent():
    step = run(g.POOL, "adaptive_avg_pool", [Signal(1.0, 0.0, 0.1, 0.2)], in_shapes=((8, 4, 5, 5),),
               out_shape=(8, 4, 1, 1))
    back = step.backward(Grad(1.0))[0]
    assert back.g == pytest.approx(1 / 25) and back.rho == 1.0
    assert step.out.m == pytest.approx((1.0 + 24 * 0.2) / 25)


def test_dropout_train_mode():
    step = run(g.DROPOUT, "dropout", [Signal(1.0)], attrs={"p": 0.2})
    assert step.out.m == pytest.approx(1.25)
    assert step.backward(Grad(1.0))[0].g == pytest.approx(1.25)


def test_concat_splits_the_gradient_by_size():
    step = run(g.CONCAT, "cat", [Signal(1.0), Signal(4.0)], in_shapes=((8, 1), (8, 3)), out_shape=(8, 4))
    assert step.out.m == pytest.approx(0.25 * 1 + 0.75 * 4)
    assert [x.g for x in step.backward(Grad(1.0))] == pytest.approx([0.25, 0.75])


def test_uniform_attention_averages_the_value_gradient():
    """docs/estimator.md: ||A^T G||^2 ~ ||G||^2 (1/T + (1 - 1/T) rho) with uniform attention."""
    t = 16
    q = Signal(0.0)  # zero queries: logits all zero, uniform attention
    core = attention.Core(q, Signal(1.0), Signal(1.0), t, t, 8, 1 / 8)
    assert core.sa2 == pytest.approx(1 / t)
    for rho in (0.0, 0.5):
        gv = core.grads(Grad(1.0, rho))[2].g
        assert gv == pytest.approx(1 / t + (1 - 1 / t) * rho)


def test_softmax_of_small_logits_is_flat():
    assert attention.sum_a2(0.0, 10) == pytest.approx(0.1)
    assert attention.sum_a2(0.01, 10) == pytest.approx(math.exp(0.01) / 10, rel=2e-3)
    assert attention.sum_a2(40.0, 10) == pytest.approx(1.0, rel=1e-6)


def test_conv_padding_fractions():
    v, v2 = dense.valid_fraction(4, 4, 3, 1, 1)
    assert v == pytest.approx(10 / 12)  # (3H-2)/(3H) per dimension (docs/estimator.md: 0.69 for two)
    assert v2 == pytest.approx(((3 / 4) ** 2 * 2 + 1) / 3)
    assert dense.steady_fraction(4, 3, 1) == pytest.approx((1 + 2 * math.cos(math.pi / 5)) / 3)


def test_registry_refuses_duplicates():
    with pytest.raises(registry.DuplicateHandler):
        registry.handles(g.NORM, "batch_norm")(lambda node, ins, ctx: None)


def test_every_kind_the_capture_makes_has_a_handler():
    kinds = [k for k in (g.INPUT, g.OUTPUT, g.LINEAR, g.CONV, g.CONV_TRANSPOSE, g.RECURRENT, g.EMBEDDING,
                         g.ACTIVATION, g.NORM, g.ADD, g.MUL, g.CONCAT, g.POOL, g.ATTENTION, g.DROPOUT, g.RESHAPE,
                         g.SOFTMAX, g.MATMUL)]
    table = registry.registered()
    missing = [k for k in kinds if not any(key[0] == k for key in table)]
    assert not missing


def test_unhandled_ops_are_reported_not_guessed(write):
    from helpers import analyze_path

    path = write("cumsum_model.py", """
        import torch
        import torch.nn as nn


        class CumSum(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(16, 16)
                self.b = nn.Linear(16, 4)

            def forward(self, x):
                return self.b(torch.cumsum(self.a(x), dim=1))
    """)
    report = analyze_path(path, select=["GL2"])
    model = report.models[0]
    from gradlint.estimate.propagate import describe_unhandled

    assert any("cumsum" in line and "no handler" in line for line in describe_unhandled(model.estimate.unhandled))
    assert any("cumsum" in n for n in model.notes)
    assert model.summary.verdict is not None  # the rest of the estimate still stands
    assert all(ly.estimate["grad_ratio"] is not None for ly in model.layers)


def test_signal_order_is_repaired():
    s = Signal(1.0, 2.0, 5.0, 0.1, 3.0).clean()
    assert s.mu ** 2 <= s.c + 1e-12 <= s.p + 1e-12 <= s.m + 1e-12 and s.c + s.s <= s.m + 1e-12





def test_x_minus_its_own_alias_is_a_shift_not_a_cancellation():
    """A capture can alias a statistic of x to x itself (``x - x.amax(-1, keepdim=True)`` before a
    logsumexp): the subtraction keeps x's energy and passes its gradient, instead of predicting an
    exact zero (a false GL204 'underflow' on x-transformers' AutoregressiveWrapper)."""
    lg = LayerGraph()
    src = lg.add(g.LINEAR, "x", out_shape=(8, 32))
    node = lg.add(g.ADD, "sub", [src.id, src.id], in_shapes=[(8, 32), (8, 32)], out_shape=(8, 32))
    lg.add(g.OUTPUT, "output", [node.id], in_shapes=[(8, 32)])
    ctx = Context(lg, _NoWeights(), batch=8)
    x = Signal(2.0, 0.0, 0.1, 0.1)
    ctx.signals = [x]
    step = registry.lookup(g.ADD, "sub")(node, [x, x], ctx)
    assert step.out.m == pytest.approx(2.0)
    assert step.backward(Grad(1.0))[0].g == pytest.approx(1.0)
    assert any("shifted" in text for _, text in ctx.assumptions)
