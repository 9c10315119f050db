"""The language server's quick fixes: requested for a diagnostic, applied as an editor applies a
WorkspaceEdit, and the result is what `gradlint --fix` writes; saving it clears the vanishing-gradient
diagnostic."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from conftest import ROOT

pytest.importorskip("pygls.lsp.client", reason="the lsp extra (pygls>=2) is not installed")

from lsprotocol import types  # noqa: E402
from test_lsp import Editor  # noqa: E402

from gradlint.lsp.code_actions import line_edits  # noqa: E402

EXAMPLE = ROOT / "examples" / "deep_sigmoid_mlp.py"


def fix_text(path) -> str:
    """The text `gradlint --fix` writes for ``path``: the CLI's analysis, annotation and rewrite plan."""
    from gradlint.config import Config
    from gradlint.fix.apply import annotate, rewrite
    from gradlint.pipeline.run import run
    from gradlint.rules import select_rules

    report, _ = run([str(path)], Config(), select_rules(None, [], []))
    annotate(report)
    plan = rewrite(report, unsafe=False)
    (new,) = plan.new.values()
    return new


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """What an editor does with a TextEdit list (positions in the original text, applied back to front)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def index(p: types.Position) -> int:
        return offsets[p.line] + p.character if p.line < len(lines) else len(text)

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:index(e.range.start)] + e.new_text + text[index(e.range.end):]
    return text


@pytest.mark.parametrize("old, new", [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb", "a\nb\nc"),
    ("a\nb\nc\n", "c\n"),
    ("x = 1\n", "x = 1\n\n\ndef f():\n    pass\n"),
])
def test_line_edits_reproduce_the_new_text(old, new):
    assert apply_text_edits(old, line_edits(old, new, len)) == new


def test_quick_fix_is_the_codemod_and_clears_the_finding(tmp_path):
    (tmp_path / ".git").mkdir()
    model = tmp_path / "model.py"
    shutil.copy(EXAMPLE, model)
    original = model.read_text(encoding="utf-8")
    expected = fix_text(model)  # what `gradlint --fix` would write (its own planning code, in-process)
    assert expected != original

    async def scenario() -> None:
        ed = Editor()
        init = await ed.start(tmp_path, {"timeout": 120, "analyzeOn": "open"})
        assert init.capabilities.code_action_provider
        try:
            n = len(ed.published)
            ed.open(model)
            diags = await ed.next_diagnostics(model, n)
            gl201 = next(d for d in diags if d.code == "GL201")
            assert gl201.data["fixes"], gl201.data
            result = await ed.client.text_document_code_action_async(types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=model.as_uri()), range=gl201.range,
                context=types.CodeActionContext(diagnostics=[gl201])))
            titles = [a.title for a in result]
            assert len(result) >= 2, titles
            assert all(a.kind == types.CodeActionKind.QuickFix for a in result)
            preferred = [a for a in result if a.is_preferred]
            assert len(preferred) == 1 and "init" in preferred[0].title, titles
            assert any("ReLU" in t and "architecture" in t for t in titles), titles
            edits = preferred[0].edit.changes[model.as_uri()]
            fixed = apply_text_edits(original, edits)
            assert fixed == expected  # the same codemod as gradlint --fix

            # Save the fixed text: the vanishing-gradient finding goes.
            n = len(ed.published)
            ed.save(model, fixed, version=2)
            after = await ed.next_diagnostics(model, n)
            assert "GL201" not in {d.code for d in after}, [d.message for d in after]
            # A range with no diagnostic offers nothing.
            none = await ed.client.text_document_code_action_async(types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=model.as_uri()),
                range=types.Range(start=types.Position(0, 0), end=types.Position(0, 1)),
                context=types.CodeActionContext(diagnostics=[])))
            assert not none
        finally:
            await ed.stop()

    asyncio.run(scenario())
