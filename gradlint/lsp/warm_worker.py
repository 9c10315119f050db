"""The analysis server behind ``gradlint lsp``: one long-lived process of the user's interpreter.

The language server never imports torch or the user's code. It starts this process once
(``runner.WarmWorker``, with ``-P`` and this gradlint install first on ``sys.path``, so nothing
in the workspace can stand in for gradlint), and this process imports torch and gradlint's
analysis modules once (``pipeline.workers.preload``). Each request then costs a fork, not an
interpreter: a child process runs ``gradlint check FILE --format json`` on the editor's buffer
text (``load.importer.SOURCE_OVERRIDES``) in the request's folder, and that run analyses the
file in a worker of its own, as on the command line (fd 1 to stderr, the memory cap, the timeout
kill). This process itself runs no user code and no tensor operation.

Protocol, one JSON object per line. In (stdin): ``{"id", "path", "text", "cwd", "args"}`` to
analyse, ``{"cancel": id}`` to stop one. Out (the original stdout; fd 1 itself points at stderr
from the start): ``{"ready": true, "seconds"}`` once warm, then per request ``{"id", "exit",
"stdout", "stderr"}`` (the CLI's exit code and output) or ``{"id", "failed": why}``. stdin's end
stops everything.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import signal
import sys
import time
from typing import Any


def main() -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # only the protocol reaches the real stdout
    sys.stdout = sys.stderr
    t0 = time.monotonic()
    from ..pipeline.run import prepare_workers
    from ..report import formats

    prepare_workers(dynamo=True)
    formats.names()  # the renderers, and with the next imports the CLI and the fixes' codemods
    from .. import cli  # noqa: F401
    from ..fix import apply  # noqa: F401 - libcst: every model with a fix checks its edit (cli's annotate)
    _send(out, {"ready": True, "seconds": round(time.monotonic() - t0, 3)})
    Server(out).serve()


def _send(out: Any, message: dict) -> None:
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


CANCEL_GRACE = 2.0  # seconds a cancelled run has to stop its workers before its group is killed


class _Request:
    def __init__(self, rid: Any, pid: int, fd: int) -> None:
        self.id, self.pid, self.fd = rid, pid, fd
        self.data = bytearray()
        self.cancelled: float | None = None  # when it was cancelled


class Server:
    def __init__(self, out: Any) -> None:
        self.out = out
        self.selector = selectors.DefaultSelector()
        self.requests: dict[int, _Request] = {}  # by fd
        self.pending = b""

    def serve(self) -> None:
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, None)
        try:
            while True:
                for key, _ in self.selector.select(0.2):
                    if key.data is None:
                        if not self._read_requests():
                            return
                    else:
                        self._read_child(key.data)
                for r in list(self.requests.values()):
                    if _exited(r.pid):
                        self._finish(r)
                    elif r.cancelled is not None and time.monotonic() - r.cancelled > CANCEL_GRACE:
                        _kill_group(r.pid)
        finally:
            self._stop_all()

    def _stop_all(self) -> None:
        """Cancel every run (each kills its analysis workers), then kill what is left."""
        for r in self.requests.values():
            self._cancel(r)
        deadline = time.monotonic() + CANCEL_GRACE
        while self.requests and time.monotonic() < deadline:
            for r in list(self.requests.values()):
                self._read_child(r)
                if _exited(r.pid):
                    self._finish(r)
            time.sleep(0.02)
        for r in list(self.requests.values()):
            _kill_group(r.pid)
            self._finish(r)

    def _cancel(self, r: _Request) -> None:
        if r.cancelled is None:
            # SIGTERM first: the run kills its analysis workers and what they started, then ends
            r.cancelled = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(r.pid, signal.SIGTERM)

    # -- requests ----------------------------------------------------------------------------
    def _read_requests(self) -> bool:
        try:
            data = os.read(0, 1 << 16)
        except BlockingIOError:
            return True
        if not data:
            return False  # the language server went away
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "cancel" in msg:
                for r in self.requests.values():
                    if r.id == msg["cancel"]:
                        self._cancel(r)
            elif "path" in msg:
                self._start(msg)
        return True

    def _start(self, msg: dict) -> None:
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _run_request(msg, write_fd)  # never returns
        os.close(write_fd)
        r = _Request(msg.get("id"), pid, read_fd)
        self.requests[read_fd] = r
        self.selector.register(read_fd, selectors.EVENT_READ, r)

    def _read_child(self, r: _Request) -> None:
        os.set_blocking(r.fd, False)
        with contextlib.suppress(BlockingIOError, OSError):
            chunk = os.read(r.fd, 1 << 16)
            r.data += chunk

    def _finish(self, r: _Request) -> None:
        os.set_blocking(r.fd, False)
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(r.fd, 1 << 16):
                r.data += chunk
        _kill_group(r.pid)  # whatever the run left behind
        _, status = os.waitpid(r.pid, 0)
        self.selector.unregister(r.fd)
        os.close(r.fd)
        del self.requests[r.fd]
        try:
            reply = json.loads(bytes(r.data))
        except ValueError:
            reply = None
        if isinstance(reply, dict) and "exit" in reply:
            _send(self.out, {"id": r.id, **reply})
        elif r.cancelled is not None:
            _send(self.out, {"id": r.id, "failed": "cancelled"})
        else:
            _send(self.out, {"id": r.id, "failed": _status_text(status)})


def _run_request(msg: dict, write_fd: int) -> None:
    """In the request's child: the CLI on the buffer's text; the reply on ``write_fd``; exit."""
    code = 70
    reply: dict = {}
    try:
        from ..pipeline.workers import die_with_parent

        os.setpgid(0, 0)
        die_with_parent()  # this server's end is every run's end
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the run's workers start (workers.py)
        os.chdir(msg.get("cwd") or os.path.dirname(msg["path"]))
        from ..cli import main as cli
        from ..load import importer

        path = msg["path"]
        if isinstance(msg.get("text"), str):
            importer.SOURCE_OVERRIDES[os.path.realpath(path)] = msg["text"]
        stdout, stderr = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = stdout, stderr
        argv = ["check", path, "--format", "json", "--exit-zero", "--no-cache", *msg.get("args", [])]
        try:
            cli(argv, standalone_mode=False)
            exit_code = 0
        except SystemExit as e:
            exit_code = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # noqa: BLE001 - click's usage errors and gradlint's own bugs
            exit_code = 2
            stderr.write(f"gradlint: error: {e}\n")
        reply = {"exit": exit_code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
        code = 0
    except BaseException as e:  # noqa: BLE001
        reply = {"exit": 2, "stdout": "", "stderr": f"gradlint: internal error: {type(e).__name__}: {e}\n"}
    finally:
        with contextlib.suppress(BaseException):
            data = json.dumps(reply).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view):]
        os._exit(code)


def _exited(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        try:
            return f"the analysis crashed ({signal.Signals(os.WTERMSIG(status)).name})"
        except ValueError:
            return f"the analysis was killed by signal {os.WTERMSIG(status)}"
    return f"the analysis exited with code {os.waitstatus_to_exitcode(status)} without a report"
