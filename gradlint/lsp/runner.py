"""The language server's side of an analysis: a warm worker process of the user's interpreter.

Why another process: torch and the user's packages live in the user's environment, not
necessarily the server's, and analysing runs the user's code. Why a long-lived one: starting an
interpreter and importing torch costs seconds on every save. ``WarmWorker`` starts
``lsp/warm_worker.py`` once (from this gradlint install, with ``-P``: never importable from the
workspace), and each request costs it a fork; the run there isolates the file in a worker of its
own (``pipeline/workers.py``: memory cap, timeout kill, crashes reported as GL001). A request
past its timeout, or superseded by a newer save, is cancelled (its process group is killed).
If the worker process itself dies, the next request starts a new one.

Standard library only: the server imports it, and tests drive it without an LSP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..pipeline.workers import bootstrap_command

DEFAULT_TIMEOUT = 60.0
STARTUP_TIMEOUT = 300.0  # importing torch on a busy machine
STOP_GRACE = 8.0  # seconds the worker process has to cancel its runs when stopped
_POSIX = os.name == "posix"


@dataclass
class Outcome:
    """What one run produced: findings (JSON contract, paths made absolute), or why there are none."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # one line for the user: timed out, crashed, no report
    log: str = ""  # the run's stderr, for the server's log
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class WarmWorker:
    """One analysis process of ``interpreter``, started on first use and kept warm."""

    def __init__(self, interpreter: str, log: Callable[[str], None] = lambda line: None) -> None:
        self.interpreter = interpreter
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Future | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.stderr_tail: list[str] = []
        self._ids = 0
        self._tasks: list[asyncio.Task] = []
        self.startup_seconds: float | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> str | None:
        """Start the process if needed and wait until it is warm; the reason when it cannot be."""
        if not self.alive:
            await self._launch()
        assert self.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.ready), STARTUP_TIMEOUT)
        except asyncio.TimeoutError:
            await self.stop()
            return f"the analysis process did not start within {STARTUP_TIMEOUT:g} s"
        except RuntimeError as e:
            return str(e)
        return None

    async def _launch(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self.stderr_tail = []
        t0 = time.monotonic()
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *bootstrap_command(self.interpreter, "gradlint.lsp.warm_worker", "main"),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env, start_new_session=_POSIX, limit=1 << 26)
        except OSError as e:
            self.proc = None
            self.ready.set_exception(RuntimeError(f"cannot run {self.interpreter}: {e.strerror or e}"))
            self.ready.exception()  # retrieved: no "never retrieved" warning
            return
        self._tasks = [loop.create_task(self._read_replies(t0)), loop.create_task(self._read_stderr())]

    async def _read_replies(self, t0: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        proc = self.proc
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("ready") and self.ready is not None and not self.ready.done():
                self.startup_seconds = time.monotonic() - t0
                self.ready.set_result(True)
            elif "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        await proc.wait()
        why = self._why_it_stopped(proc.returncode)
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(RuntimeError(why))
            self.ready.exception()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_result({"failed": why})
        self.pending.clear()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        stream = self.proc.stderr
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self.stderr_tail = (self.stderr_tail + [text])[-20:]
            if text:
                self.log(text)

    def _why_it_stopped(self, rc: int | None) -> str:
        last = next((ln.strip() for ln in reversed(self.stderr_tail) if ln.strip()), "")
        if rc is not None and rc < 0:
            try:
                what = f"crashed ({signal.Signals(-rc).name})"
            except ValueError:
                what = f"was killed by signal {-rc}"
        else:
            what = f"exited with code {rc}"
        return f"the analysis process {what}" + (f": {last}" if last else "")

    async def analyse(self, path: str, text: str | None, cwd: str, args: list[str] | tuple[str, ...] = (),
                      timeout: float = DEFAULT_TIMEOUT) -> Outcome:
        """Analyse the file at ``path`` (absolute) as ``text`` (the editor's buffer; None: the file
        on disk), in the folder ``cwd``; its findings, or why there are none."""
        problem = await self.start()
        if problem is not None:
            return Outcome(error=problem)
        assert self.proc is not None and self.proc.stdin is not None
        self._ids += 1
        rid = self._ids
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        request = {"id": rid, "path": path, "text": text, "cwd": cwd,
                   "args": ["--timeout", f"{timeout:g}", *args]}
        t0 = time.monotonic()
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            await self.proc.stdin.drain()
            reply = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            self._cancel(rid)
            return Outcome(error=f"the analysis did not finish within {timeout:g} s and was stopped "
                                 "(a hang in the model's code? raise the `timeout` setting for big models)",
                           seconds=time.monotonic() - t0)
        except asyncio.CancelledError:  # a newer save or a close superseded this run
            self._cancel(rid)
            raise
        except (ConnectionError, RuntimeError) as e:
            self.pending.pop(rid, None)
            return Outcome(error=f"the analysis process stopped: {e}")
        seconds = time.monotonic() - t0
        if "failed" in reply:
            return Outcome(error=str(reply["failed"]), seconds=seconds)
        log = str(reply.get("stderr", ""))
        findings = parse_report(str(reply.get("stdout", "")), cwd)
        if findings is None:
            last = next((ln.strip() for ln in reversed(log.splitlines()) if ln.strip()), "")
            return Outcome(error=f"the analysis exited with code {reply.get('exit')} without a report"
                                 + (f": {last}" if last else ""), log=log, seconds=seconds)
        return Outcome(findings=findings, log=log, seconds=seconds)

    def _cancel(self, rid: int) -> None:
        self.pending.pop(rid, None)
        if self.alive and self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.proc.stdin.write((json.dumps({"cancel": rid}) + "\n").encode())

    async def stop(self) -> None:
        """Stop the process and everything it started: the end of its input lets it cancel its
        runs (each kills its analysis workers); what has not ended a few seconds later is killed."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError, OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if _POSIX:
                        os.killpg(proc.pid, signal.SIGKILL)
                    else:  # pragma: no cover - Windows
                        proc.kill()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 10)
        for task in self._tasks:
            task.cancel()
        self._tasks = []


def parse_report(stdout: str, cwd: str) -> list[dict[str, Any]] | None:
    """The findings of a ``--format json`` report, each with its model's ``target`` and an absolute
    location path; None when stdout is not such a report."""
    try:
        report = json.loads(stdout)
        models = report["models"]
    except (ValueError, KeyError, TypeError):
        return None
    findings = []
    for m in models:
        for f in m.get("findings") or []:
            f = dict(f, target=m.get("target", ""))
            loc = f.get("location")
            if loc and loc.get("path"):
                f["location"] = dict(loc, path=os.path.normpath(os.path.join(cwd, loc["path"])))
            findings.append(f)
    return findings
