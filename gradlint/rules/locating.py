"""Where to point a finding that is about many layers at once."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..ir.graph import Node
from ..ir.source import Location


def representative_location(nodes: Sequence[Node]) -> Location | None:
    """The line that made most of these layers (a block class repeated N times), else the first.

    A finding about a stack of layers is fixed where the repeated layer is written; when every
    layer has its own line (an explicit nn.Sequential), the first one is where the stack starts.
    """
    locs = [n.location for n in nodes if n.location is not None]
    if not locs:
        return None
    counts = Counter(locs)
    best, k = counts.most_common(1)[0]
    return best if k > 1 else locs[0]
