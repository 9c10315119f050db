"""``--format mermaid``: the node-by-node shrink of the error signal delta as a Mermaid ``graph TD``.

Each node shows delta = ||dL/dx|| at its output relative to the last weight layer's output (the
estimate); each edge the factor the gradient is multiplied by on its way back along that edge.
Nodes where the estimate crosses the vanishing/exploding threshold are coloured. Large graphs keep
the weight layers, merges and the model's inputs and outputs, folding the chains in between (the
factors multiply).

One model: a bare diagram (paste it into mermaid.live or ``mmdc``). Several: a Markdown document
with one fenced ``mermaid`` block per model (GitHub renders it).
"""

from __future__ import annotations

from typing import IO, Any

FULL_LIMIT = 250  # nodes; beyond it chains are folded
_KEEP_KINDS = {"input", "output", "linear", "conv", "conv_transpose", "recurrent", "embedding", "attention", "add",
               "concat", "matmul"}


def _esc(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _fmt(x: float | None) -> str:
    return "-" if x is None else ("0" if x == 0 else f"{x:.1e}")


def diagram(model: Any) -> list[str]:
    """The Mermaid lines of a ``ModelReport``'s estimate."""
    flow = model.estimate.flow
    edges = model.estimate.edge_gains
    vanishing, exploding = model.thresholds.vanishing, model.thresholds.exploding
    by_id = {f.id: f for f in flow}
    keep = {f.id for f in flow}
    if len(flow) > FULL_LIMIT:
        keep = {f.id for f in flow if f.kind in _KEEP_KINDS or len(f.inputs) > 1}

    def trace(src: int) -> tuple[int | None, float]:
        """The nearest kept ancestor along first inputs, and the product of gains on the way."""
        gain = 1.0
        cur = src
        seen = 0
        while cur not in keep and seen < 10_000:
            f = by_id[cur]
            if not f.inputs:
                return None, gain
            nxt = f.inputs[0]
            gain *= edges.get((nxt, cur), 1.0)
            cur = nxt
            seen += 1
        return cur, gain

    lines = ["graph TD"]
    styled: dict[str, list[str]] = {"vanishing": [], "exploding": [], "zero": []}
    for f in flow:
        if f.id not in keep:
            continue
        name = f.label if f.kind not in ("input", "output") else f.kind
        kind = f.op or f.kind
        text = f"{name}<br/>{kind} &middot; &delta; {_fmt(f.delta)}"
        lines.append(f'    n{f.id}["{_esc(text)}"]')
        if f.zero:
            styled["zero"].append(f"n{f.id}")
        elif f.delta is not None and f.delta > 0 and f.delta < vanishing:
            styled["vanishing"].append(f"n{f.id}")
        elif f.delta is not None and f.delta > exploding:
            styled["exploding"].append(f"n{f.id}")
    for f in flow:
        if f.id not in keep:
            continue
        for src in dict.fromkeys(f.inputs):
            anc, gain = trace(src)
            if anc is None:
                continue
            gain *= edges.get((src, f.id), 1.0)
            label = f"x{gain:.2g}" if (src, f.id) in edges else ""
            lines.append(f"    n{anc} -->|{label}| n{f.id}" if label else f"    n{anc} --> n{f.id}")
    lines.append("    classDef vanishing fill:#f8d7da,stroke:#a33")
    lines.append("    classDef exploding fill:#fff3cd,stroke:#a80")
    lines.append("    classDef zero fill:#e2e3e5,stroke:#666,stroke-dasharray: 4 2")
    for cls, ids in styled.items():
        if ids:
            lines.append(f"    class {','.join(ids)} {cls}")
    return lines


def render_mermaid(report: Any, out: IO[str], **_: Any) -> None:
    models = [m for m in report.models if m.estimate is not None]
    header = ["%% gradlint: delta = |dL/dx| at each node relative to the last weight layer's output (estimate);",
              "%% edge labels: the factor the gradient is multiplied by going back along that edge."]
    if len(models) == 1:
        out.write("\n".join(header + [f"%% {models[0].target}"] + diagram(models[0])) + "\n")
        return
    if not models:
        out.write("%% gradlint: no model was estimated\n")
        for m in report.models:
            if m.error:
                out.write(f"%% {m.target}: {m.error['stage']} failed: {m.error['message']}\n")
        return
    for m in models:
        out.write(f"## {m.target}\n\n```mermaid\n")
        out.write("\n".join(header + diagram(m)) + "\n```\n\n")
