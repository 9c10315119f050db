"""The redesign advisor: for a model whose gradient vanishes or explodes, candidate changes (a
re-initialization, an activation swap, normalization, residual connections, branch scales), each
estimated on the captured graph and ranked by its predicted effect.

Layer: above ``rules`` (it reads the findings' model and the estimate), below ``pipeline``, whose
advise stage attaches the result to findings as ``Finding.fixes``. The source edits that carry a
fix out live in ``gradlint/fix`` (front layer). No torch import at module level.
"""

from .advisor import advise, direction_of
from .candidates import InitHost
from .host import init_host

__all__ = ["advise", "direction_of", "InitHost", "init_host"]
