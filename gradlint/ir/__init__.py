"""The intermediate representation every stage shares, and the vocabulary around it.

``graph`` (``LayerGraph``, ``Node``, node kinds), ``source`` (``Location``: the user's line),
``ops`` (activation families and their derivative bounds), ``structure`` (depth, skip
connections, runs), ``verdict`` (thresholds and verdicts), ``errors`` (``StageError``: a stage
that failed, becoming GL001). No torch import at module level anywhere in this package.
"""
