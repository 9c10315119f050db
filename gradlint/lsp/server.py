"""The language server (pygls 2.x): diagnostics on save (by default), cleared on close, a hover
that says the fix.

The server itself never imports torch or the user's code: analyses run in a warm worker process
of the user's interpreter (``runner.WarmWorker``), on the editor's buffer text, so the server
stays up whatever the model's code does and a save costs a fork there, not a new interpreter.
Analysing runs the file's code, so merely opening a file runs nothing unless ``analyzeOn`` is
``"open"``. Results are cached by the text's hash, so re-opening or re-saving unchanged text
costs nothing. A newer save cancels a run still going for the same file.

Settings, from ``initializationOptions`` (or ``gradlint lsp --python/--timeout``):
``interpreter`` (path of the Python with torch and gradlint; default: the server's own),
``timeout`` (seconds per analysis, default 60), ``args`` (extra ``gradlint check`` arguments,
e.g. ``["--select", "GL1"]``), ``analyzeOn`` (``"save"``, ``"open"`` or ``"never"``),
``memoryLimit`` (the analysis' address-space cap, e.g. ``"4GiB"``; default gradlint's 8 GiB).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from ..version import __version__
from . import diagnostics, runner
from .detect import defines_models

CACHE_SIZE = 128
PARALLEL_RUNS = 2  # more would only fight over the cores
ANALYZE_ON = ("save", "open", "never")


@dataclass
class Settings:
    interpreter: str = field(default_factory=lambda: sys.executable)
    timeout: float = runner.DEFAULT_TIMEOUT
    args: list[str] = field(default_factory=list)
    analyze_on: str = "save"
    memory_limit: str | None = None  # None: gradlint's default cap

    def update(self, options: Any) -> list[str]:
        """Apply initializationOptions; returns complaints about values that were ignored."""
        problems: list[str] = []
        if not isinstance(options, dict):
            return problems if options is None else ["initializationOptions must be an object"]
        if "interpreter" in options:
            if isinstance(options["interpreter"], str) and options["interpreter"]:
                self.interpreter = options["interpreter"]
            else:
                problems.append("`interpreter` must be a path")
        if "timeout" in options:
            t = options["timeout"]
            if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0:
                self.timeout = float(t)
            else:
                problems.append("`timeout` must be a positive number of seconds")
        if "args" in options:
            a = options["args"]
            if isinstance(a, list) and all(isinstance(x, str) for x in a):
                self.args = list(a)
            else:
                problems.append("`args` must be a list of strings")
        if "analyzeOn" in options:
            if options["analyzeOn"] in ANALYZE_ON:
                self.analyze_on = options["analyzeOn"]
            else:
                problems.append(f"`analyzeOn` must be one of {', '.join(repr(x) for x in ANALYZE_ON)}")
        if "memoryLimit" in options:
            from ..config import parse_size

            m = options["memoryLimit"]
            try:
                parse_size(m)
                self.memory_limit = str(m)
            except ValueError:
                problems.append("`memoryLimit` must be a size like \"4GiB\" (0 or \"none\": no cap)")
        return problems

    def check_args(self) -> list[str]:
        """The extra ``gradlint check`` arguments of a run."""
        extra = ["--memory-limit", self.memory_limit] if self.memory_limit is not None else []
        return [*extra, *self.args]


class GradlintServer(LanguageServer):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("gradlint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.settings = settings or Settings()
        self.cache: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
        self.shown: dict[str, list[diagnostics.Shown]] = {}
        self.runs: dict[str, asyncio.Task] = {}
        self._slots: asyncio.Semaphore | None = None
        self.worker: runner.WarmWorker | None = None

    def analysis_worker(self) -> runner.WarmWorker:
        if self.worker is None or self.worker.interpreter != self.settings.interpreter:
            self.worker = runner.WarmWorker(self.settings.interpreter, lambda line: self.log(line))
        return self.worker

    def warm_up(self) -> None:
        """Start the analysis process now, so the first save does not wait for torch to import."""
        if self.settings.analyze_on == "never":
            return
        worker = self.analysis_worker()

        async def start() -> None:
            problem = await worker.start()
            if problem is None:
                self.log(f"gradlint: analysis process ready in {worker.startup_seconds:.1f} s")
            else:
                self.log(f"gradlint: {problem}", types.MessageType.Warning)

        asyncio.get_running_loop().create_task(start())

    # -- scheduling ---------------------------------------------------------------------------
    def schedule(self, uri: str, text: str | None = None) -> None:
        """Analyse ``uri`` (as ``text``, else the open document's text) now, superseding a run
        still going for it."""
        self.cancel(uri)
        task = asyncio.get_running_loop().create_task(self._analyse(uri, text))
        self.runs[uri] = task
        task.add_done_callback(lambda t, uri=uri: self._finished(uri, t))

    def cancel(self, uri: str) -> None:
        task = self.runs.pop(uri, None)
        if task is not None and not task.done():
            task.cancel()  # the runner kills the subprocess

    def cancel_all(self) -> None:
        for uri in list(self.runs):
            self.cancel(uri)

    def _finished(self, uri: str, task: asyncio.Task) -> None:
        if self.runs.get(uri) is task:
            del self.runs[uri]
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()
            self.log(f"gradlint: internal error analysing {uri}: {type(e).__name__}: {e}", types.MessageType.Error)

    # -- one analysis -------------------------------------------------------------------------
    def _text_of(self, uri: str, text: str | None) -> str | None:
        if text is not None:
            return text
        doc = self.workspace.text_documents.get(unquote(uri))
        if doc is not None:
            return doc.source
        path = to_fs_path(uri)
        try:
            return Path(path).read_bytes().decode("utf-8", "replace") if path else None
        except OSError:
            return None

    def _key(self, path: str, text: str) -> tuple:
        s = self.settings
        return (os.path.realpath(path), hashlib.sha256(text.encode("utf-8")).hexdigest(), s.interpreter,
                tuple(s.check_args()))

    def show_cached(self, uri: str, text: str) -> bool:
        """Publish what an earlier analysis of this very text found (nothing runs); False if none."""
        path = to_fs_path(uri)
        findings = self.cache.get(self._key(path, text)) if path and uri.startswith("file:") else None
        if findings is None:
            return False
        self.publish(uri, diagnostics.to_diagnostics(findings, path, text.splitlines(), self._units))
        return True

    async def _analyse(self, uri: str, text: str | None) -> None:
        path = to_fs_path(uri)
        if path is None or not uri.startswith("file:"):
            return
        text = self._text_of(uri, text)
        if text is None:
            return
        lines = text.splitlines()
        if not defines_models(text):
            self.publish(uri, [])
            return
        s = self.settings
        key = self._key(path, text)
        findings = self.cache.get(key)
        if findings is not None:
            self.cache.move_to_end(key)
            self.log(f"gradlint: {path} is unchanged, reusing its {len(findings)} findings")
        else:
            if self._slots is None:
                self._slots = asyncio.Semaphore(PARALLEL_RUNS)
            async with self._slots:
                outcome = await self.analysis_worker().analyse(path, text, self._cwd_for(path), s.check_args(),
                                                               s.timeout)
            if outcome.log.strip():
                self.log(outcome.log.rstrip())
            if not outcome.ok:
                # Not cached: a timeout may pass, and the next save should try again.
                self.log(f"gradlint: {path}: {outcome.error}", types.MessageType.Warning)
                self.publish(uri, [diagnostics.failure(lines, outcome.error or "", self._units)])
                return
            findings = outcome.findings
            self.cache[key] = findings
            while len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
            self.log(f"gradlint: analysed {path} in {outcome.seconds:.2f} s: {len(findings)} findings")
        self.publish(uri, diagnostics.to_diagnostics(findings, path, lines, self._units))

    def _cwd_for(self, path: str) -> str:
        """The workspace root when the file is in it (so paths and config resolve as in a terminal)."""
        root = self.workspace.root_path
        if root and os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
            return root
        return str(Path(path).parent)

    def _units(self, s: str) -> int:
        return self.workspace.position_codec.client_num_units(s)

    # -- output -------------------------------------------------------------------------------
    def publish(self, uri: str, shown: list[diagnostics.Shown]) -> None:
        doc = self.workspace.text_documents.get(unquote(uri))
        if doc is None:  # closed while the analysis ran: its diagnostics are already cleared
            return
        self.shown[uri] = shown
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=[s.diagnostic for s in shown], version=doc.version if doc else None))

    def clear(self, uri: str) -> None:
        self.cancel(uri)
        self.shown.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def hover(self, uri: str, pos: types.Position) -> types.Hover | None:
        hits = [s for s in self.shown.get(uri, []) if diagnostics.contains(s.diagnostic.range, pos)]
        if not hits:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                        value="\n\n---\n\n".join(s.hover for s in hits)),
                           range=hits[0].diagnostic.range)


def build(settings: Settings | None = None) -> GradlintServer:
    server = GradlintServer(settings)

    @server.feature(types.INITIALIZE)
    def initialize(ls: GradlintServer, params: types.InitializeParams) -> None:
        for problem in ls.settings.update(params.initialization_options):
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning,
                                                           message=f"gradlint: ignored setting: {problem}"))

    @server.feature(types.INITIALIZED)
    def initialized(ls: GradlintServer, params: types.InitializedParams) -> None:
        ls.warm_up()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GradlintServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        if ls.settings.analyze_on == "open":
            ls.schedule(doc.uri, doc.text)
        else:  # opening a file runs none of its code; what this text already gave is shown
            ls.show_cached(doc.uri, doc.text)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=True))
    def did_save(ls: GradlintServer, params: types.DidSaveTextDocumentParams) -> None:
        if ls.settings.analyze_on != "never":
            ls.schedule(params.text_document.uri, params.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GradlintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.clear(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: GradlintServer, params: types.HoverParams) -> types.Hover | None:
        return ls.hover(params.text_document.uri, params.position)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_action(ls: GradlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        from .code_actions import handle

        return handle(ls, params)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: GradlintServer, *_args) -> None:
        ls.cancel_all()
        if ls.worker is not None:
            await ls.worker.stop()  # no analysis process outlives the server

    return server


def serve(interpreter: str | None = None, timeout: float | None = None) -> None:
    settings = Settings()
    if interpreter:
        settings.interpreter = interpreter
    if timeout:
        settings.timeout = timeout
    build(settings).start_io()
