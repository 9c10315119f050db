"""``gradlint lsp``: a language server that shows gradlint's findings as diagnostics in the editor.

- ``detect``: which files are worth an analysis (a cheap text check, no parsing of user code);
- ``runner``: one analysis in a subprocess of the user's interpreter, with a timeout (stdlib only);
- ``diagnostics``: findings -> LSP diagnostics and hover text;
- ``server``: the pygls server (open/save/close, cache, hover).

Only ``diagnostics`` and ``server`` need pygls/lsprotocol (the ``lsp`` extra).
"""
