"""Load: the target syntax (``targets``), importing the user's file (``importer``), finding its
models (``discover``) and building them (``build``), with each submodule's construction site
(``provenance``) and what init code did (``init_recorder``, ``initlaw``).

User code runs here and only here (import and construction), the way pytest imports test files:
the file's folder (or its package root) goes on ``sys.path`` and ``if __name__ == "__main__":``
blocks do not run. ``limits`` bounds it in time.
"""
