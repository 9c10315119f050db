"""`gradlint lsp` driven by a real LSP client (pygls's) over stdio, as an editor would."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_gradlint

pytest.importorskip("pygls.lsp.client", reason="the lsp extra (pygls>=2) is not installed")

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

EXAMPLE = ROOT / "examples" / "deep_sigmoid_mlp.py"

# The example, repaired the way GL101's fix says: ReLU, a residual connection, LayerNorm.
FIXED = '''\
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return x + self.act(self.fc(self.norm(x)))


class DeepSigmoidMLP(nn.Module):
    def __init__(self, depth: int = 20, width: int = 64, classes: int = 10):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth - 1)])
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.blocks(x))


def example_inputs():
    return (torch.randn(32, 64),)
'''

# Kills the interpreter the analysis runs in, as a broken extension module would.
CRASH = '''\
import ctypes

import torch.nn as nn

ctypes.string_at(0)


class Net(nn.Module):
    pass
'''


class Editor:
    """A minimal editor: an LSP client that records what the server publishes and logs."""

    def __init__(self) -> None:
        self.client = LanguageClient("gradlint-tests", "1")
        self.published: list[types.PublishDiagnosticsParams] = []
        self.logs: list[str] = []

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(ls, params: types.PublishDiagnosticsParams) -> None:
            self.published.append(params)

        @self.client.feature(types.WINDOW_LOG_MESSAGE)
        def _log(ls, params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def _show(ls, params: types.ShowMessageParams) -> None:
            self.logs.append(params.message)

    async def start(self, workspace: Path, options: dict | None = None) -> types.InitializeResult:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        # -P, as an installed `gradlint` script starts: the workspace is not on the server's sys.path.
        await self.client.start_io(sys.executable, "-P", "-m", "gradlint", "lsp", env=env, cwd=str(workspace))
        result = await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options=options))
        self.client.initialized(types.InitializedParams())
        return result

    def open(self, path: Path) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=path.as_uri(), language_id="python", version=1, text=path.read_text(encoding="utf-8"))))

    def save(self, path: Path, text: str, version: int) -> None:
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))

    def close(self, path: Path) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri())))

    async def next_diagnostics(self, path: Path, after: int, timeout: float = 120) -> list[types.Diagnostic]:
        """The first diagnostics published for ``path`` after the ``after``-th publication."""
        uri = path.as_uri()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.published[after:]:
                if p.uri == uri:
                    return list(p.diagnostics)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no diagnostics for {path.name} within {timeout} s; server log: {self.logs}")

    async def hover(self, path: Path, line: int, character: int) -> types.Hover | None:
        return await self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
            position=types.Position(line=line, character=character)))

    async def stop(self) -> int | None:
        """shutdown + exit; the server's exit code."""
        await asyncio.wait_for(self.client.shutdown_async(None), 30)
        self.client.exit(None)
        server = self.client._server
        try:
            await asyncio.wait_for(server.wait(), 30)
        finally:
            if server.returncode is None:  # never leave a server behind
                server.kill()
                await server.wait()
            await self.client.stop()
        return server.returncode


def _by_code(diags: list[types.Diagnostic]) -> dict[str, types.Diagnostic]:
    return {str(d.code): d for d in diags}


def test_diagnostics_follow_open_fix_save_and_close(tmp_path):
    """The issue's scenario (with ``analyzeOn: "open"``): open a deep sigmoid model, see GL101 on
    the right line, fix it, save, see the diagnostics go; unchanged content is not analysed twice;
    a crash in the model's code is a GL001 on that file and the server carries on."""
    (tmp_path / ".git").mkdir()
    model = tmp_path / "model.py"
    original = EXAMPLE.read_text(encoding="utf-8")
    model.write_text(original, encoding="utf-8")
    crash = tmp_path / "crash.py"
    crash.write_text(CRASH, encoding="utf-8")
    plain = tmp_path / "util.py"
    plain.write_text("def helper():\n    return 1\n", encoding="utf-8")
    gl101_line = next(i for i, t in enumerate(original.splitlines()) if "nn.Sigmoid()" in t)  # 0-based

    async def scenario() -> None:
        ed = Editor()
        init = await ed.start(tmp_path, {"timeout": 120, "analyzeOn": "open"})
        caps = init.capabilities
        assert caps.hover_provider
        assert caps.text_document_sync.open_close and caps.text_document_sync.save is not None
        try:
            # A crash in the model's code: its worker dies, a GL001 says how, the server carries on.
            n = len(ed.published)
            ed.open(crash)
            diags = await ed.next_diagnostics(crash, n)
            assert len(diags) == 1 and "killed by SIGSEGV at import" in diags[0].message, diags
            assert diags[0].source == "gradlint" and diags[0].code == "GL001"

            # A file that defines no model is not analysed: no run, empty diagnostics.
            n = len(ed.published)
            ed.open(plain)
            assert await ed.next_diagnostics(plain, n) == []
            assert not any("util.py" in m and "analysed" in m for m in ed.logs)

            # Open: GL101 at the Sigmoid's line, with code, severity, source and a docs link.
            n = len(ed.published)
            ed.open(model)
            diags = await ed.next_diagnostics(model, n)
            found = _by_code(diags)
            assert {"GL101", "GL102", "GL103", "GL104"} <= set(found), diags
            gl101 = found["GL101"]
            assert gl101.range.start.line == gl101_line
            assert gl101.range.start.character == original.splitlines()[gl101_line].index("nn.Sigmoid()")
            assert gl101.severity == types.DiagnosticSeverity.Error
            assert found["GL102"].severity == types.DiagnosticSeverity.Warning
            assert all(d.source == "gradlint" for d in diags)
            assert gl101.code_description.href.endswith("/rules/GL101.md")
            assert "sigmoid" in gl101.message

            # Hover on the diagnostic's range says the fix.
            hover = await ed.hover(model, gl101_line, gl101.range.start.character + 3)
            assert hover is not None and "**Fix:**" in hover.contents.value and "ReLU" in hover.contents.value
            assert "GL101" in hover.contents.value and "/rules/GL101.md" in hover.contents.value
            assert await ed.hover(model, 0, 0) is None

            # Fix the file and save: the diagnostics are cleared.
            n = len(ed.published)
            ed.save(model, FIXED, version=2)
            assert await ed.next_diagnostics(model, n) == []
            assert await ed.hover(model, gl101_line, gl101.range.start.character + 3) is None

            # Back to the original content: same hash, the cached findings come back without a run.
            runs = sum("analysed" in m and "model.py" in m for m in ed.logs)
            n = len(ed.published)
            ed.save(model, original, version=3)
            again = await ed.next_diagnostics(model, n)
            assert _by_code(again)["GL101"].range == gl101.range
            assert sum("analysed" in m and "model.py" in m for m in ed.logs) == runs
            assert any("unchanged" in m and "model.py" in m for m in ed.logs)

            # Close: cleared.
            n = len(ed.published)
            ed.close(model)
            assert await ed.next_diagnostics(model, n) == []
        finally:
            code = await ed.stop()
        assert code == 0

    asyncio.run(scenario())


def test_missing_pygls_is_one_line_naming_the_extra(tmp_path):
    # A pygls that cannot be imported shadows the installed one.
    fake = tmp_path / "fake" / "pygls"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'pygls'\", name='pygls')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "fake")])}
    code, out, err = run_gradlint("lsp", env=env)
    assert code == 2
    assert err.count("\n") == 1 and "gradlint[lsp]" in err and "Traceback" not in err, err


def test_help_and_rule_import_neither_torch_nor_pygls():
    probe = (
        "import sys\n"
        "from gradlint.cli import main\n"
        "for argv in (['--help'], ['rule', '--all'], ['rule', 'GL101', '--format', 'json'], ['lsp', '--help']):\n"
        "    try:\n"
        "        main(argv, standalone_mode=True)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = sorted(m for m in ('torch', 'pygls', 'lsprotocol') if m in sys.modules)\n"
        "print('IMPORTED', bad, file=sys.stderr)\n"
    )
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert "IMPORTED []" in proc.stderr, proc.stderr


def test_server_process_does_not_import_torch():
    """The server must start without torch: it lives in the user's environment, not the server's."""
    import subprocess

    probe = ("import sys\nfrom gradlint.lsp import server, diagnostics\nserver.build()\n"
             "diagnostics._doc_url('GL101')\nprint('torch' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_lsp_help_names_the_settings():
    code, out, _ = run_gradlint("lsp", "--help")
    assert code == 0 and "--python" in out and "--timeout" in out


# -- what runs, and where ----------------------------------------------------------------------------
# Its import leaves a mark: proof that the file's code ran.
MARKING = '''\
from pathlib import Path

import torch.nn as nn

Path(__file__).with_name("ran.txt").write_text("imported")
'''


def _model_with_mark(original: str) -> str:
    return MARKING + original.replace("import torch\nimport torch.nn as nn\n", "import torch\n", 1)


def test_opening_runs_nothing_until_saved_and_the_buffer_is_what_is_linted(tmp_path):
    model = tmp_path / "model.py"
    deep = _model_with_mark(EXAMPLE.read_text(encoding="utf-8"))
    model.write_text(deep, encoding="utf-8")
    mark = tmp_path / "ran.txt"

    async def scenario() -> None:
        ed = Editor()
        await ed.start(tmp_path, {"timeout": 120})
        try:
            ed.open(model)
            deadline = time.monotonic() + 120
            while not any("analysis process ready" in m for m in ed.logs) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            assert not mark.exists(), "opening the file ran its code"
            assert not [p for p in ed.published if p.uri == model.as_uri() and p.diagnostics]

            # Save: the buffer is analysed. The disk holds a repaired model, the buffer the deep
            # sigmoid one: GL101 comes from the buffer.
            model.write_text(FIXED, encoding="utf-8")
            n = len(ed.published)
            uri = model.as_uri()
            ed.client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=deep)]))
            ed.client.text_document_did_save(types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri)))
            diags = await ed.next_diagnostics(model, n)
            assert "GL101" in _by_code(diags) and mark.exists()
        finally:
            await ed.stop()

    asyncio.run(scenario())


def test_a_workspace_gradlint_folder_does_not_replace_the_linter(tmp_path):
    fake = tmp_path / "gradlint"
    fake.mkdir()
    body = "from pathlib import Path\nPath(__file__).parent.with_name('shadowed.txt').write_text('x')\n"
    (fake / "__init__.py").write_text(body + "raise SystemExit('the workspace gradlint ran')\n")
    (fake / "__main__.py").write_text(body)
    model = tmp_path / "model.py"
    model.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")

    async def scenario() -> None:
        ed = Editor()
        await ed.start(tmp_path, {"timeout": 120})
        try:
            ed.open(model)
            n = len(ed.published)
            ed.save(model, model.read_text(encoding="utf-8"), version=2)
            diags = await ed.next_diagnostics(model, n)
            assert "GL101" in _by_code(diags), (diags, ed.logs)
        finally:
            await ed.stop()

    asyncio.run(scenario())
    assert not (tmp_path / "shadowed.txt").exists()


HOG = '''\
import torch
import torch.nn as nn

BIG = torch.ones(1 << 30)  # 4 GiB


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
'''


def test_the_memory_cap_holds_and_the_server_carries_on(tmp_path):
    hog = tmp_path / "hog.py"
    hog.write_text(HOG, encoding="utf-8")
    model = tmp_path / "model.py"
    model.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")

    async def scenario() -> None:
        ed = Editor()
        await ed.start(tmp_path, {"timeout": 120, "memoryLimit": "2GiB"})
        try:
            ed.open(hog)
            n = len(ed.published)
            ed.save(hog, HOG, version=2)
            (diag,) = await ed.next_diagnostics(hog, n)
            assert diag.code == "GL001" and "over the 2 GiB memory cap" in diag.message, diag
            ed.open(model)
            n = len(ed.published)
            ed.save(model, model.read_text(encoding="utf-8"), version=2)
            assert "GL101" in _by_code(await ed.next_diagnostics(model, n))
        finally:
            await ed.stop()

    asyncio.run(scenario())


def test_warm_latency_is_reported(tmp_path):
    """Save -> diagnostics, after the first analysis, through the warm worker (the figure that
    matters is measured in benchmarks/lsp_latency.py; here it must be reported)."""
    model = tmp_path / "model.py"
    original = EXAMPLE.read_text(encoding="utf-8")
    model.write_text(original, encoding="utf-8")

    async def scenario() -> list[float]:
        ed = Editor()
        await ed.start(tmp_path, {"timeout": 120})
        seconds = []
        try:
            ed.open(model)
            for version in range(2, 5):
                text = original + f"\n# edit {version}\n"  # new text: no cached result
                n = len(ed.published)
                t0 = time.monotonic()
                ed.save(model, text, version=version)
                assert "GL101" in _by_code(await ed.next_diagnostics(model, n))
                seconds.append(time.monotonic() - t0)
        finally:
            await ed.stop()
        runs = [m for m in ed.logs if m.startswith("gradlint: analysed") and "model.py" in m]
        assert len(runs) == 3 and all(" s: " in m for m in runs), ed.logs
        return seconds

    seconds = asyncio.run(scenario())
    print(f"save -> diagnostics: first {seconds[0]:.2f} s, then {', '.join(f'{s:.2f}' for s in seconds[1:])} s")
