"""Source edits for the advisor's fixes (front layer): libcst codemods (``codemods.py``), which
fixes to apply and the check that a rewritten file still builds (``apply.py``), and the patches
the language server offers as quick fixes (``edits.py``)."""
