"""Quick fixes: each fix of a diagnostic with an edit becomes an LSP code action whose
WorkspaceEdit the same codemod as ``gradlint --fix`` produces (``gradlint/fix/codemods.py``).

The server never imports torch: the fixes and their codemod plans arrive with the findings (the
JSON report's ``findings[].fixes``), and libcst rewrites the text the editor holds (an open
document) or the file on disk. Edits replace only the lines that change, so the editor keeps its
cursor and undo history sensible.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types

from ..fix.codemods import CannotRewrite, apply_change, change_paths, note_for

Reader = Callable[[str], str | None]  # absolute path -> the text the editor has (or None: read the file)


def new_texts(fix: dict[str, Any], read: Reader) -> dict[str, tuple[str, str]]:
    """{path: (old text, new text)} for every file a fix's edit changes."""
    out: dict[str, tuple[str, str]] = {}
    for change in (fix.get("edit") or {}).get("changes", []):
        for path in change_paths(change):
            real = os.path.realpath(path)
            if real not in out:
                text = read(real)
                if text is None:
                    text = Path(real).read_text(encoding="utf-8")
                out[real] = (text, text)
            old, current = out[real]
            out[real] = (old, apply_change(current, change, real, _note(fix)))
    return {p: t for p, t in out.items() if t[0] != t[1]}


def _note(fix: dict[str, Any]) -> str:
    return note_for(fix.get("title", ""), fix.get("predicted_attenuation"), fix.get("predicted_verdict"))


def line_edits(old: str, new: str, units: Callable[[str], int]) -> list[types.TextEdit]:
    """The smallest whole-line replacements that turn ``old`` into ``new``."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    edits = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        start = types.Position(i1, 0)
        if i2 < len(a) or (a and a[-1].endswith(("\n", "\r"))):
            end = types.Position(i2, 0)
        else:  # the replaced lines reach the last line, which has no newline
            end = types.Position(len(a) - 1, units(a[-1]))
        edits.append(types.TextEdit(range=types.Range(start=start, end=end), new_text="".join(b[j1:j2])))
    return edits


def actions(diagnostics: list[types.Diagnostic], read: Reader, units: Callable[[str], int],
            log: Callable[[str], None]) -> list[types.CodeAction]:
    """One quick fix per distinct fix with an edit, best first; the first safe one is preferred."""
    out: list[types.CodeAction] = []
    seen: dict[str, types.CodeAction] = {}
    preferred = False
    for diag in diagnostics:
        data = diag.data if isinstance(diag.data, dict) else {}
        for fix in data.get("fixes") or []:
            if not isinstance(fix, dict) or not fix.get("edit") or fix.get("applicability") == "manual":
                continue
            title = _title(fix)
            if title in seen:
                seen[title].diagnostics = [*(seen[title].diagnostics or []), diag]
                continue
            try:
                texts = new_texts(fix, read)
            except (CannotRewrite, OSError, UnicodeDecodeError, KeyError) as e:
                log(f"gradlint: quick fix {fix.get('title')!r} is not available: {e}")
                continue
            if not texts:
                continue
            edit = types.WorkspaceEdit(changes={Path(p).as_uri(): line_edits(old, new, units)
                                                for p, (old, new) in texts.items()})
            action = types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diag], edit=edit,
                                      is_preferred=fix.get("applicability") == "safe" and not preferred)
            preferred = preferred or bool(action.is_preferred)
            seen[title] = action
            out.append(action)
    return out


def _title(fix: dict[str, Any]) -> str:
    att = fix.get("predicted_attenuation")
    att_text = f"{att:.1e}" if isinstance(att, (int, float)) else "-"
    kind = "" if fix.get("applicability") == "safe" else " [changes the architecture]"
    return f"gradlint: {fix.get('title')} (predicted {att_text}, {fix.get('predicted_verdict')}){kind}"


# -- the request ----------------------------------------------------------------------------------

def handle(ls: Any, params: types.CodeActionParams) -> list[types.CodeAction]:
    """``textDocument/codeAction``: the quick fixes of the diagnostics published in the range."""
    uri = params.text_document.uri
    shown = getattr(ls, "shown", {}).get(uri, [])
    here = [s.diagnostic for s in shown if overlaps(s.diagnostic.range, params.range)]
    if params.context.only and types.CodeActionKind.QuickFix not in params.context.only:
        return []

    def read(path: str) -> str | None:
        for doc in ls.workspace.text_documents.values():
            if doc.path and os.path.realpath(doc.path) == os.path.realpath(path):
                return doc.source
        return None

    def units(text: str) -> int:
        return ls.workspace.position_codec.client_num_units(text)

    return actions(here, read, units, ls.log)


def overlaps(a: types.Range, b: types.Range) -> bool:
    """Two ranges share a position (a code action request's range and a diagnostic's)."""
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and \
        (b.start.line, b.start.character) <= (a.end.line, a.end.character)
