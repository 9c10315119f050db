"""RNN / LSTM / GRU modules unrolled over the example's sequence length, and their cells.

Each time step is a small mean-field layer: gate pre-activations with variance
``in E[W_ih^2] m_x + H E[W_hh^2] m_h + Var(b)`` around the gate's bias mean (so a forget-gate bias
of 1 is seen), gates' second moments from the sigmoid/tanh expectations, and the backward pass
through time (docs/estimator.md, "Recurrent": a default tanh RNN keeps ~E[phi'^2]/3 per step; an
LSTM's cell path keeps E[f^2]). Multi-layer and bidirectional modules stack these chains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import graph as g
from .. import activations
from ..context import Unsupported, numel
from ..registry import Step, handles
from ..signals import Grad, Signal

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1, "lstmcell": 4, "grucell": 3, "rnncell": 1}


@dataclass
class Block:
    """Per-gate statistics of one layer and direction."""

    w2_ih: list[float]
    w2_hh: list[float]
    b_mean: list[float]  # b_ih + b_hh per gate
    b_var: list[float]
    b_hn2: float = 0.0  # GRU: second moment of b_hn (inside r * (...))
    b_hn_mean: float = 0.0
    b_in_var: float = 0.0  # GRU: variance of b_in alone
    b_in_mean: float = 0.0


def _block(ctx, node, suffix: str, gates: int) -> Block:
    def stats(kind: str, k: int):
        return ctx.param(node, f"{kind}{suffix}", k, gates)

    w_ih = [stats("weight_ih", k) for k in range(gates)]
    w_hh = [stats("weight_hh", k) for k in range(gates)]
    if None in w_ih or None in w_hh:
        raise Unsupported(f"recurrent weights{suffix} unknown")
    b_ih = [stats("bias_ih", k) for k in range(gates)]
    b_hh = [stats("bias_hh", k) for k in range(gates)]
    mean, var = [], []
    for bi, bh in zip(b_ih, b_hh):
        mi, vi = (bi.mean, max(bi.second - bi.mean ** 2, 0.0)) if bi else (0.0, 0.0)
        mh, vh = (bh.mean, max(bh.second - bh.mean ** 2, 0.0)) if bh else (0.0, 0.0)
        mean.append(mi + mh)
        var.append(vi + vh)
    blk = Block([w.second for w in w_ih], [w.second for w in w_hh], mean, var)
    if gates == 3:
        bn_h, bn_i = b_hh[2], b_ih[2]
        blk.b_hn2 = bn_h.second if bn_h else 0.0
        blk.b_hn_mean = bn_h.mean if bn_h else 0.0
        blk.b_in_var = max(bn_i.second - bn_i.mean ** 2, 0.0) if bn_i else 0.0
        blk.b_in_mean = bn_i.mean if bn_i else 0.0
    return blk


@dataclass
class Chain:
    """One layer, one direction, over T steps: forward second moments, then backward energies."""

    mode: str
    blk: Block
    n_in: int
    hidden: int
    act: str = "tanh"
    steps: list[dict] = field(default_factory=list)

    def forward(self, mx: list[float], mh0: float = 0.0, mc0: float = 0.0) -> tuple[list[float], list[float]]:
        sig, tanh = activations.get("sigmoid"), activations.get("tanh")
        b, n, h = self.blk, self.n_in, self.hidden
        mh, mc = mh0, mc0
        out_m, out_mu = [], []
        for m_x in mx:
            q = [n * b.w2_ih[k] * m_x + h * b.w2_hh[k] * mh + b.b_var[k] for k in range(len(b.w2_ih))]
            st = {"mx": m_x, "mh": mh, "mc": mc}
            if self.mode == "lstm":
                gi, gf, gg, go = (sig.moments(b.b_mean[0], q[0]), sig.moments(b.b_mean[1], q[1]),
                                  tanh.moments(b.b_mean[2], q[2]), sig.moments(b.b_mean[3], q[3]))
                mc_new = gf.ef2 * mc + gi.ef2 * gg.ef2
                tc = tanh.moments(0.0, mc_new)
                mh_new = go.ef2 * tc.ef2
                st.update(gi=gi, gf=gf, gg=gg, go=go, tc=tc, mc_new=mc_new)
                mc, mu = mc_new, 0.0
            elif self.mode == "gru":
                gr, gz = sig.moments(b.b_mean[0], q[0]), sig.moments(b.b_mean[1], q[1])
                m_hn = h * b.w2_hh[2] * mh + b.b_hn2
                mu_n = b.b_in_mean + gr.ef * b.b_hn_mean
                var_n = n * b.w2_ih[2] * m_x + b.b_in_var + gr.ef2 * m_hn - (gr.ef * b.b_hn_mean) ** 2
                gn = tanh.moments(mu_n, max(var_n, 0.0))
                one_minus_z2 = 1 - 2 * gz.ef + gz.ef2
                mh_new = one_minus_z2 * gn.ef2 + gz.ef2 * mh
                st.update(gr=gr, gz=gz, gn=gn, m_hn=m_hn, omz2=one_minus_z2)
                mu = 0.0
            else:
                a = activations.get("relu" if self.act == "relu" else "tanh").moments(b.b_mean[0], q[0])
                mh_new = a.ef2
                st.update(a=a)
                mu = a.ef
            self.steps.append(st)
            mh = mh_new
            out_m.append(mh)
            out_mu.append(mu)
        return out_m, out_mu

    def backward(self, gout: list[float]) -> tuple[list[float], float, float, float, float]:
        """(gradient energy at each input step, ||dW_ih||^2, ||dW_hh||^2, grad at h0, grad at c0)."""
        b, n, h = self.blk, self.n_in, self.hidden
        rec = 0.0  # gradient reaching h_t from step t+1
        gc_next = 0.0
        f2_next = 0.0
        gx = [0.0] * len(self.steps)
        e_ih = e_hh = 0.0
        for t in range(len(self.steps) - 1, -1, -1):
            st = self.steps[t]
            gh = gout[t] + rec
            if self.mode == "lstm":
                gi, gf, gg, go, tc = st["gi"], st["gf"], st["gg"], st["go"], st["tc"]
                gc = gh * go.ef2 * tc.edf2 + f2_next * gc_next
                ga = [gc * gg.ef2 * gi.edf2, gc * st["mc"] * gf.edf2, gc * gi.ef2 * gg.edf2, gh * tc.ef2 * go.edf2]
                rec = h * sum(w * x for w, x in zip(b.w2_hh, ga))
                gc_next, f2_next = gc, gf.ef2
                e_hh += sum(ga) * h * st["mh"]
            elif self.mode == "gru":
                gr, gz, gn = st["gr"], st["gz"], st["gn"]
                g_an = gh * st["omz2"] * gn.edf2
                g_az = gh * (st["mh"] + gn.ef2) * gz.edf2
                g_hn = g_an * gr.ef2
                g_ar = g_an * st["m_hn"] * gr.edf2
                ga = [g_ar, g_az, g_an]
                rec = gh * gz.ef2 + h * (b.w2_hh[2] * g_hn + b.w2_hh[0] * g_ar + b.w2_hh[1] * g_az)
                e_hh += (g_ar + g_az + g_hn) * h * st["mh"]
            else:
                ga = [gh * st["a"].edf2]
                rec = h * b.w2_hh[0] * ga[0]
                e_hh += ga[0] * h * st["mh"]
            gx[t] = n * sum(w * x for w, x in zip(b.w2_ih, ga))
            e_ih += sum(ga) * n * st["mx"]
        gc0 = f2_next * gc_next if self.mode == "lstm" else 0.0
        return gx, e_ih, e_hh, rec, gc0


def _steps(shape, batch_first: bool) -> int:
    if not shape:
        return 1
    if len(shape) == 2:
        return shape[0]
    return shape[1] if batch_first else shape[0]


def _reads_every_step(ctx, node) -> bool:
    """Does a consumer read the whole output sequence (not just the last step / h_n)?"""
    total = numel(node.out_shape)
    return any(shape is not None and numel(shape) >= total for _, shape in ctx.readers(node.id))


@handles(g.RECURRENT, "lstm", "gru", "rnn_tanh", "rnn_relu")
def recurrent(node, ins, ctx) -> Step:
    mode = {"rnn_tanh": "rnn", "rnn_relu": "rnn"}.get(node.op, node.op)
    gates = GATES[node.op]
    if node.attrs.get("proj_size"):
        raise Unsupported("LSTM with proj_size")
    x = ins[0]
    hidden = node.attrs.get("hidden_size")
    layers = node.attrs.get("num_layers") or 1
    dirs = 2 if node.attrs.get("bidirectional") else 1
    n_in0 = node.attrs.get("input_size")
    if not isinstance(hidden, int) or not isinstance(n_in0, int):
        raise Unsupported("recurrent module without sizes")
    steps = _steps(ctx.in_shape(node, 0), bool(node.attrs.get("batch_first")))
    act = "relu" if node.op == "rnn_relu" else "tanh"
    mh0 = ins[1].m if len(ins) > 1 else 0.0
    mc0 = ins[2].m if len(ins) > 2 else 0.0

    chains: list[list[Chain]] = []
    mx = [x.m] * steps
    mu_top = [0.0] * steps
    for layer in range(layers):
        row = []
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            ch = Chain(mode, _block(ctx, node, sfx, gates), n_in0 if layer == 0 else hidden * dirs, hidden, act)
            seq = mx if d == 0 else mx[::-1]
            m_out, mu_out = ch.forward(seq, mh0, mc0)
            outs.append((m_out if d == 0 else m_out[::-1], mu_out if d == 0 else mu_out[::-1]))
            row.append(ch)
        chains.append(row)
        mx = [sum(o[0][t] for o in outs) / dirs for t in range(steps)]
        mu_top = [sum(o[1][t] for o in outs) / dirs for t in range(steps)]
    m_avg = sum(mx) / steps
    mu_avg = sum(mu_top) / steps
    out = Signal(m_avg, mu_avg, mu_avg * mu_avg, mu_avg * mu_avg).clean()
    every = _reads_every_step(ctx, node)
    n_inputs = len(node.inputs)
    names = {}
    for layer in range(layers):
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            names[(layer, d)] = (node.params.get(f"weight_ih{sfx}"), node.params.get(f"weight_hh{sfx}"))

    def run_backward(grad: Grad) -> tuple[list[float], dict[str, float], float]:
        # the gradient at the top layer's output, per step and direction
        if every:
            top = [[grad.g / (steps * dirs)] * steps for _ in range(dirs)]
        else:
            top = [[0.0] * steps for _ in range(dirs)]
            top[0][steps - 1] = grad.g / dirs
            if dirs == 2:
                top[1][0] = grad.g / dirs
        energies: dict[str, float] = {}
        g_h0 = 0.0
        per_dir = top
        gx_total = [0.0] * steps
        for layer in range(layers - 1, -1, -1):
            gx_total = [0.0] * steps
            for d in range(dirs):
                ch = chains[layer][d]
                seq = per_dir[d] if d == 0 else per_dir[d][::-1]
                gx, e_ih, e_hh, gh0, _ = ch.backward(seq)
                if d == 1:
                    gx = gx[::-1]
                for t in range(steps):
                    gx_total[t] += gx[t]
                wi, wh = names[(layer, d)]
                if wi:
                    energies[wi] = energies.get(wi, 0.0) + e_ih
                if wh:
                    energies[wh] = energies.get(wh, 0.0) + e_hh
                g_h0 += gh0
            per_dir = [[v / dirs for v in gx_total] for _ in range(dirs)]
        return gx_total, energies, g_h0

    cache: dict[tuple[float, float], tuple] = {}

    def solved(grad: Grad):
        key = (grad.g, grad.rho)
        if key not in cache:
            cache.clear()
            cache[key] = run_backward(grad)
        return cache[key]

    def backward(grad: Grad) -> list[Grad]:
        gx, _, g_h0 = solved(grad)
        res = [Grad(sum(gx), 0.0)]
        if n_inputs > 1:
            res.append(Grad(g_h0, 0.0))
        return res + [Grad(0.0)] * (n_inputs - len(res))

    per_step = chains[0][0].steps
    info = {"steps": steps, "every_step": every}
    if mode == "rnn" and per_step:
        info["step_gain"] = hidden * chains[0][0].blk.w2_hh[0] * per_step[-1]["a"].edf2
    return Step(out, backward, cause=f"{node.op} through time", weight_grads=lambda grad: solved(grad)[1],
                lipschitz=[1.0] * n_inputs, bound_is_estimate=True, info=info)


@handles(g.RECURRENT, "lstmcell", "grucell", "rnncell")
def cell(node, ins, ctx) -> Step:
    """One step of a cell called in a Python loop (each call is a node; time is the graph)."""
    mode = {"lstmcell": "lstm", "grucell": "gru", "rnncell": "rnn"}[node.op]
    gates = GATES[node.op]
    hidden = node.attrs.get("hidden_size")
    n_in = node.attrs.get("input_size")
    if not isinstance(hidden, int) or not isinstance(n_in, int):
        raise Unsupported("cell without sizes")
    act = "relu" if node.attrs.get("nonlinearity") == "relu" else "tanh"
    ch = Chain(mode, _block(ctx, node, "", gates), n_in, hidden, act)
    mh0 = ins[1].m if len(ins) > 1 else 0.0
    mc0 = ins[2].m if len(ins) > 2 else mh0
    m_out, mu_out = ch.forward([ins[0].m], mh0, mc0)
    out = Signal(m_out[0], mu_out[0], mu_out[0] ** 2, mu_out[0] ** 2).clean()
    wi, wh = node.params.get("weight_ih"), node.params.get("weight_hh")
    n_inputs = len(node.inputs)

    def solve(grad: Grad):
        return ch.backward([grad.g])

    def backward(grad: Grad) -> list[Grad]:
        gx, _, _, gh0, gc0 = solve(grad)
        res = [Grad(gx[0], grad.rho)]
        if n_inputs > 1:
            res.append(Grad(gh0, grad.rho))
        if n_inputs > 2:
            res.append(Grad(gc0, grad.rho))
        return res + [Grad(0.0)] * (n_inputs - len(res))

    def weight_grads(grad: Grad) -> dict[str, float]:
        _, e_ih, e_hh, _, _ = solve(grad)
        return {k: v for k, v in ((wi, e_ih), (wh, e_hh)) if k}

    return Step(out, backward, cause=f"{node.op} step", weight_grads=weight_grads, lipschitz=[1.0] * n_inputs,
                bound_is_estimate=True)
