"""The estimator: each weight layer's gradient at initialization, predicted from the architecture.

``run.estimate_model`` is the entry point (the pipeline's estimate stage calls it);
``propagate.estimate_graph`` is the engine;
``handlers/`` hold one small function per op (``registry``); ``activations`` and ``gaussian`` the
mean-field expectations; ``weights`` the weight statistics; ``bound`` the worst-case bound and
the textbook baseline; ``explain`` the split of the decay into causes. The formulas and their
sources: docs/estimator.md.
"""
