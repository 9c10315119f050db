"""The estimator: each weight layer's gradient at initialization, predicted from the architecture.

``stage.estimate_stage`` plugs it into the pipeline; ``propagate.estimate_graph`` is the engine;
``handlers/`` hold one small function per op (``registry``); ``activations`` and ``gaussian`` the
mean-field expectations; ``weights`` the weight statistics; ``bound`` the worst-case bound and
the textbook baseline; ``explain`` the split of the decay into causes.
"""
