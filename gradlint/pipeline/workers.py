"""One analysis worker per target file: the run survives whatever the model's code does.

gradlint runs the user's code by design (it imports the file and calls the constructors), so
each file is analysed in a worker process of its own, forked from this process once torch and
gradlint's analysis modules are imported (``preload``), the way ``multiprocessing``'s forkserver
starts warm workers. The worker

- sends its ``FileResult`` back as JSON over a pipe (``serialize.py``), after a line per phase
  (``import``, ``build``, each analysis stage) so the parent knows where it is;
- points fd 1 at stderr and fd 0 at /dev/null before any user code runs, so ``os.system("echo")``,
  subprocesses and C extensions cannot write into ``--format json`` on stdout;
- runs in its own process group, under an address-space cap (``RLIMIT_AS``, ``memory-limit``);
- keeps ``--timeout`` per phase with an alarm (``load/limits.py``), and the parent kills the
  whole group when a phase overruns the timeout by a grace period, whatever the code catches;
- leaves nothing behind: the next file gets a fresh fork (changed working folder, ``sys.path``,
  ``sys.modules``, monkey-patches and threads die with the process).

A worker that dies without a result (``os._exit``, a segfault, the kill) becomes a GL001 finding
for that file naming the cause and the phase; the other files' results are untouched. ``--jobs N``
runs N workers at a time; results are handed back by index, so the report keeps the serial order.

CUDA cannot be used in a forked child of a process that initialised it, so with ``--verify`` on a
CUDA device each worker is a fresh interpreter instead (``spawn``): slower to start (it imports
torch itself), otherwise the same protocol. The address-space cap is off there, since CUDA
reserves far more address space than it uses.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import format_size
from ..ir import errors
from ..ir.errors import StageError, one_line
from ..ir.source import Location, display_path
from ..load.targets import Target
from .records import FileResult
from .serialize import ShapeError, from_plain, to_plain

# Phases the worker reports, and the stage a death in each is blamed on (the JSON contract's list).
STAGE_OF_PHASE = {"start": "import", "import": "import", "build": "build", "capture": "capture",
                  "structure": "capture", "estimate": "estimate", "verify": "verify", "rules": "estimate"}
_EXIT_INTERNAL = 70  # the worker's own failure, outside any model


@dataclass(frozen=True)
class Limits:
    timeout: float  # seconds per phase (``--timeout``)
    memory: int | None  # bytes of address space per worker (``memory-limit``); None: no cap
    threads: int = 1  # torch's intra-op threads in a worker for --verify (the static analysis uses one)

    @property
    def grace(self) -> float:
        """How long past the timeout a phase may run before the worker is killed: time for the
        alarm's exception to unwind and the partial result to be sent."""
        return min(10.0, max(2.0, 0.25 * self.timeout))


@dataclass
class FileJob:
    index: int
    target: Target
    explicit: bool


def isolation_available() -> bool:
    return hasattr(os, "fork") and hasattr(os, "waitid") and hasattr(os, "setpgid")


def needs_spawn(config: Any) -> bool:
    """Whether workers must be fresh interpreters: ``--verify`` on CUDA (or ``auto`` with a CUDA
    build of torch), since CUDA does not work in a forked child."""
    if not config.verify:
        return False
    device = (config.device or "cpu").strip().lower()
    if device.startswith("cuda"):
        return True
    if device == "auto":
        import torch

        return torch.version.cuda is not None
    return False


def preload(dynamo: bool = False, warm_up: Callable[[], None] | None = None) -> int:
    """Import torch and the analysis' modules once, before forking, and warm them up; returns
    the number of threads a worker may give torch for --verify. ``dynamo``: import
    torch._dynamo too (a long-lived server), else defer it (load/lazy_dynamo.py). ``warm_up``:
    an analysis run here (run.warm_up), so every worker forked afterwards inherits torch's and
    gradlint's first-call work done.

    torch's thread pool (GNU OpenMP) does not survive a fork: a worker whose parent ever ran a
    parallel region hangs in its first one. A parent that imports torch here has run none, and
    the warm-up runs with one thread, so its workers may use torch's default; a process that had
    torch before (a test, a notebook) may have, and its workers stay at one thread."""
    fresh = "torch" not in sys.modules
    import torch  # noqa: F401
    import torch.fx  # noqa: F401
    import torch.fx.experimental.symbolic_shapes  # noqa: F401 - sympy: the first torch._check of any meta op

    from ..capture import fx_capture, hook_capture  # noqa: F401
    from ..estimate import run as estimate_run  # noqa: F401
    from ..load import build, discover  # noqa: F401
    from ..load.lazy_dynamo import defer_dynamo_import
    from ..rules import all_rules
    from . import stages  # noqa: F401

    all_rules()
    if dynamo:
        import torch._dynamo  # noqa: F401
    else:
        defer_dynamo_import()
    global _threads
    if _threads is None:
        default = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if warm_up is not None:
                with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
                    warm_up()
        finally:
            torch.set_num_threads(default)
        _threads = default if fresh else 1
        # What exists now is shared with every worker: keep the collector from walking it there,
        # which would copy every page of it (Python's advice for fork servers).
        gc.freeze()
    return _threads


_threads: int | None = None  # set by the first preload()


# -- the parent's side ---------------------------------------------------------------------------
# analyze(target, session, explicit) -> FileResult: the work done in a worker (run.analyze_file).
Analyze = Callable[[Target, Any, bool], FileResult]
# failed(spec, error, path, session) -> ModelReport: a GL001 report (run.failed_report).
Failed = Callable[[str, StageError, str, Any], Any]


def analyze_files(jobs: list[FileJob], session: Any, workers: int, limits: Limits,
                  on_result: Callable[[int, FileResult], None], analyze: Analyze, failed: Failed) -> None:
    """Analyse each job's file in its own worker, ``workers`` at a time; ``on_result(index,
    result)`` as each one finishes. An interrupt (Ctrl-C) kills the running workers and is
    re-raised; results handed over before it are kept."""
    spawn = needs_spawn(session.config)
    pending = deque(jobs)
    running: dict[int, _Worker] = {}
    selector = selectors.DefaultSelector()
    terminate = _interrupt_on_sigterm()
    try:
        while pending or running:
            while pending and len(running) < max(workers, 1):
                w = _start(pending.popleft(), session, limits, spawn, analyze)
                running[w.fd] = w
                selector.register(w.fd, selectors.EVENT_READ, w)
            # Wake for output, a deadline, or every 0.2 s to notice exits: a grandchild the
            # user's code started may hold the pipe open after the worker is gone.
            wait = min(w.deadline for w in running.values()) - time.monotonic()
            for key, _ in selector.select(max(min(wait, 0.2), 0)):
                key.data.read_available()
            for w in list(running.values()):
                if w.result is not None or w.exited():
                    selector.unregister(w.fd)
                    del running[w.fd]
                    on_result(w.job.index, w.finish(session, failed))
                elif time.monotonic() > w.deadline:
                    w.kill(timed_out=True)
    finally:
        for w in running.values():
            w.kill()
            w.reap()
        selector.close()
        terminate()


def _interrupt_on_sigterm() -> Callable[[], None]:
    """While workers run, SIGTERM (a cancelled CI job, the language server's cancel) interrupts
    like Ctrl-C, so the workers are killed before this process ends. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _start(job: FileJob, session: Any, limits: Limits, spawn: bool, analyze: Analyze) -> "_Worker":
    if spawn:
        return _spawn(job, session, limits)
    for stream in (sys.stdout, sys.stderr):  # a buffer copied into the child would print twice
        with contextlib.suppress(Exception):
            stream.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read_fd)
        worker_main(write_fd, job, session, limits, analyze)  # never returns
    os.close(write_fd)
    return _Worker(job, pid, read_fd, limits)


def _spawn(job: FileJob, session: Any, limits: Limits) -> "_Worker":
    from ..config import Config

    request = {
        "job": {"index": job.index, "target": to_plain(job.target, Target), "explicit": job.explicit},
        "config": to_plain(session.config, Config),
        "enabled": sorted(session.enabled),
        "debug": errors.DEBUG,
        "limits": {"timeout": limits.timeout, "memory": None, "threads": 0},
        "sources": _source_overrides(),
    }
    proc = subprocess.Popen(bootstrap_command(sys.executable, "gradlint.pipeline.run", "spawned_worker"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
    except BrokenPipeError:  # it died at once: reported as a death
        pass
    return _Worker(job, proc.pid, os.dup(proc.stdout.fileno()), Limits(limits.timeout, None), proc)


def bootstrap_command(interpreter: str, module: str, function: str) -> list[str]:
    """``interpreter`` running ``module.function()`` of this very gradlint install: ``-P`` keeps the
    working folder off ``sys.path`` (and an empty ``PYTHONPATH`` entry, which means it too) and
    this install's folder goes first, so a ``gradlint/`` folder in the user's project can never
    stand in for the linter."""
    root = str(Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path[:] = [{root!r}] + [p for p in sys.path if p not in ('', '.', {root!r})]; "
            f"from {module} import {function}; {function}()")
    return [interpreter, "-P", "-c", code]


class _Worker:
    """The parent's view of one worker: its pipe, where it is, when it must be done."""

    def __init__(self, job: FileJob, pid: int, fd: int, limits: Limits, proc: subprocess.Popen | None = None) -> None:
        self.job, self.pid, self.fd, self.limits, self.proc = job, pid, fd, limits, proc
        self.buffer = bytearray()
        self.phase, self.model, self.location = "start", None, None
        self.deadline = time.monotonic() + limits.timeout + limits.grace
        self.result: FileResult | None = None
        self.internal_error: str | None = None
        self.killed_for_time = False
        self.status: int | None = None
        self.peak_rss = 0  # bytes

    # -- messages ----------------------------------------------------------------------------
    def read_available(self) -> bool:
        """Read what the pipe holds and act on each whole line; False when there was nothing."""
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:  # BlockingIOError included: nothing there now
            return False
        if not data:
            return False
        self.buffer += data
        *lines, rest = self.buffer.split(b"\n")
        self.buffer = bytearray(rest)
        for line in lines:
            self._message(line)
        return True

    def _message(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        if "phase" in msg:
            self.phase = msg["phase"] if msg["phase"] in STAGE_OF_PHASE else self.phase
            self.model = None if msg["phase"] == "import" else (msg.get("model") or self.model)
            loc = msg.get("location")
            self.location = Location(**loc) if isinstance(loc, dict) else None
            if msg.get("timed"):
                self.deadline = time.monotonic() + self.limits.timeout + self.limits.grace
        elif "result" in msg:
            try:
                self.result = from_plain(msg["result"], FileResult)
            except ShapeError as e:
                self.internal_error = f"the worker's result was malformed: {e}"
        elif "error" in msg:
            self.internal_error = str(msg["error"])
        elif "stderr" in msg:
            with contextlib.suppress(Exception):
                sys.stderr.write(str(msg["stderr"]))

    # -- the process ---------------------------------------------------------------------------
    def exited(self) -> bool:
        """Whether the worker has ended (without reaping it, so its process group stays ours)."""
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def kill(self, timed_out: bool = False) -> None:
        self.killed_for_time = self.killed_for_time or timed_out
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def reap(self) -> None:
        if self.status is not None:
            return
        try:
            _, self.status, usage = os.wait4(self.pid, 0)
            self.peak_rss = usage.ru_maxrss * 1024
        except ChildProcessError:
            self.status = 0
        if self.proc is not None:
            self.proc.returncode = os.waitstatus_to_exitcode(self.status)
            self.proc.stdout.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def finish(self, session: Any, failed: Failed) -> FileResult:
        """The file's result, or a GL001 that says how the worker died. Once the result is in,
        the worker is not waited for: it only has its exit left."""
        self._drain()
        self.kill()  # what the user's code started and left running dies with its worker
        self.reap()
        if self.result is not None:
            return self.result
        if self.internal_error is not None and not self.killed_for_time:
            return FileResult(internal_errors=[f"{self.job.target.spec}: {self.internal_error}"], cacheable=False)
        return self._death(session, failed)

    def _drain(self) -> None:
        os.set_blocking(self.fd, False)
        for _ in range(1 << 12):  # bounded: a grandchild of the worker could keep writing
            if not self.read_available():
                break

    def _death(self, session: Any, failed: Failed) -> FileResult:
        target = self.job.target
        stage = STAGE_OF_PHASE[self.phase]
        where = _where(self.phase, self.model)
        cause, hint = self._cause(where)
        location = self.location or Location(display_path(target.path), 1, 1)
        error = StageError(stage, cause, location, hint)
        report = failed(self.model or target.spec, error, target.path, session)
        return FileResult(reports=[report], project_files=[str(Path(target.path).resolve())], cacheable=False)

    def _cause(self, where: str) -> tuple[str, str | None]:
        status = self.status or 0
        if self.killed_for_time:
            return (f"did not finish within {self.limits.timeout:g} s {where}, and did not stop when interrupted "
                    f"(code that catches BaseException?): killed {self.limits.grace:g} s later",
                    "raise --timeout, or stop catching BaseException around long-running code")
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            text = f"killed by {name} {where}"
            if sig == signal.SIGKILL:
                text += " (by the system's out-of-memory killer?)"
            elif self.limits.memory and self.peak_rss > self.limits.memory // 2:
                text += f" near the {format_size(self.limits.memory)} memory cap"
            hint = ("a crash in native code (an extension module, ctypes)" if sig in (signal.SIGSEGV, signal.SIGBUS)
                    else None)
            return text, hint
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        return (f"os._exit({code}) or a C-level exit {where}: the process ended before gradlint could report",
                "guard script code with `if __name__ == \"__main__\":`" if self.phase in ("start", "import") else None)


def _where(phase: str, model: str | None) -> str:
    name = (model or "").rpartition("::")[2] or "the model"
    return {
        "start": "at import", "import": "at import", "build": f"while building {name}",
        "capture": f"while capturing {name}", "structure": f"while capturing {name}",
        "estimate": f"while analysing {name}", "rules": f"while analysing {name}",
        "verify": f"while measuring {name} (--verify)",
    }.get(phase, "")


# -- the worker's side ---------------------------------------------------------------------------
class _Channel:
    """Lines of JSON to the parent."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


class _ChannelText(io.TextIOBase):
    """A text stream that sends what is written to the parent, which writes it to its stderr."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self.channel.send({"stderr": text})
        return len(text)


def _writes_to_fd(stream: Any, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


def worker_main(channel_fd: int, job: FileJob, session: Any, limits: Limits, analyze: Analyze,
                spawned: bool = False) -> None:
    """Analyse one file and exit; never returns."""
    code = _EXIT_INTERNAL
    channel = _Channel(channel_fd)
    try:
        if not spawned:
            os.setpgid(0, 0)
            die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _detach_stdio()
        if not _writes_to_fd(sys.stderr, 2):  # a caller's captured stream (click's CliRunner, pytest)
            sys.stderr = _ChannelText(channel)
        sys.stdout = sys.stderr
        _cap_memory(limits.memory)
        errors.MEMORY_LIMIT = limits.memory
        _set_threads(session.config, limits.threads)
        start_folder = os.getcwd()

        def progress(phase: str, model: str | None = None, location: Location | None = None,
                     timed: bool = False) -> None:
            if os.getcwd() != start_folder:  # each phase starts where gradlint was started
                with contextlib.suppress(OSError):
                    os.chdir(start_folder)
            channel.send({"phase": phase, "model": model, "timed": timed,
                          "location": location.to_json() if location else None})

        session.progress = progress
        result = _analyze_recording(job, session, analyze)
        channel.send({"result": to_plain(result, FileResult)})
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported to the parent, then exit
        with contextlib.suppress(BaseException):
            channel.send({"error": one_line(e)})
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _analyze_recording(job: FileJob, session: Any, analyze: Analyze) -> FileResult:
    """``analyze``, recording the files and environment variables the user's code read."""
    from ..load.dependencies import DependencyRecorder

    config = session.config
    root = config.root or Path.cwd()
    with DependencyRecorder(root, ignore=[root / config.cache_dir]) as deps:
        result = analyze(job.target, session, job.explicit)
    result.opened_files = deps.opened
    result.environment = dict(deps.environment)
    return result


def die_with_parent() -> None:
    """Linux: this worker is killed when the process that forked it ends, however it ends (a
    SIGKILL leaves no chance to clean up); elsewhere the parent's own cleanup has to do."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before that took effect
        os._exit(_EXIT_INTERNAL)


def _detach_stdio() -> None:
    """fd 1 -> stderr and fd 0 -> /dev/null for everything that runs from now on."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)


def _cap_memory(limit: int | None) -> None:
    if not limit:
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _set_threads(config: Any, threads: int) -> None:
    """One intra-op thread for the static analysis (small ops, where more threads only contend);
    --verify runs real forward/backward passes with the threads ``preload`` allows."""
    import torch

    torch.set_num_threads(threads if config.verify else 1)


def spawned_main(make_session: Callable[[Any, set[str]], Any], analyze: Analyze) -> None:
    """The body of a spawned worker (``run.spawned_worker``): the request comes on stdin."""
    from ..config import Config
    from ..load import importer

    request = json.loads(sys.stdin.buffer.read())
    channel_fd = os.dup(1)
    config = from_plain(request["config"], Config)
    job = FileJob(request["job"]["index"], from_plain(request["job"]["target"], Target), request["job"]["explicit"])
    errors.DEBUG = bool(request.get("debug"))
    importer.SOURCE_OVERRIDES.update(request.get("sources") or {})
    limits = Limits(float(request["limits"]["timeout"]), request["limits"]["memory"], request["limits"]["threads"])
    worker_main(channel_fd, job, make_session(config, set(request["enabled"])), limits, analyze, spawned=True)


def _source_overrides() -> dict[str, str]:
    from ..load import importer

    return dict(importer.SOURCE_OVERRIDES)

