"""One analysis, run as ``INTERPRETER -m gradlint check FILE --format json`` in a subprocess.

Why a subprocess: torch and the user's packages live in the user's environment, not necessarily
the server's; and analysing imports the user's file, whose code may crash the interpreter
(a segfault in an extension, ``os._exit``) or never return. The server only waits, with a
timeout, and kills the whole process group (the user's code may have started children).

Standard library only: the server imports it, and tests drive it without an LSP client.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 60.0
_POSIX = os.name == "posix"


@dataclass
class Outcome:
    """What one run produced: findings (JSON contract, paths made absolute), or why there are none."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # one line for the user: timed out, crashed, no report
    log: str = ""  # the subprocess's stderr, for the server's log
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def command(interpreter: str, path: str, args: list[str] | tuple[str, ...] = ()) -> list[str]:
    # --exit-zero: findings are the normal case here, not a failure of the run.
    return [interpreter, "-m", "gradlint", "check", path, "--format", "json", "--exit-zero", *args]


@dataclass
class Completed:
    returncode: int | None  # None: killed on timeout
    stdout: str
    stderr: str


async def run_command(argv: list[str], cwd: str, timeout: float) -> Completed:
    """Run ``argv``; on timeout or cancellation kill its process group. Raises OSError when the
    program cannot be started."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,  # never the server's stdin: it is the LSP stream
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=_POSIX)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        _kill(proc)
        try:  # bounded: a grandchild that left the group may hold the pipes open
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            pass
        return Completed(None, "", "")
    except asyncio.CancelledError:  # a newer save or a close superseded this run
        _kill(proc)
        raise
    return Completed(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    try:
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the user's children die with it
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


async def analyse(path: str, interpreter: str, timeout: float = DEFAULT_TIMEOUT, args: list[str] | tuple[str, ...] = (),
                  cwd: str | None = None) -> Outcome:
    """Analyse the file at ``path`` (absolute) and return its findings."""
    cwd = cwd or str(Path(path).parent)
    t0 = time.monotonic()
    try:
        done = await run_command(command(interpreter, path, args), cwd, timeout)
    except OSError as e:
        return Outcome(error=f"cannot run {interpreter}: {e.strerror or e}")
    seconds = time.monotonic() - t0
    if done.returncode is None:
        return Outcome(error=f"the analysis did not finish within {timeout:g} s and was stopped "
                             "(a hang in the model's code? raise the `timeout` setting for big models)", seconds=seconds)
    findings = parse_report(done.stdout, cwd)
    if findings is None:
        return Outcome(error=_why_no_report(done), log=done.stderr, seconds=seconds)
    return Outcome(findings=findings, log=done.stderr, seconds=seconds)


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


def _why_no_report(done: Completed) -> str:
    last = next((ln.strip() for ln in reversed(done.stderr.splitlines()) if ln.strip()), "")
    rc = done.returncode
    if rc is not None and rc < 0:
        try:
            what = f"crashed ({signal.Signals(-rc).name})"
        except ValueError:
            what = f"was killed by signal {-rc}"
    else:
        what = f"exited with code {rc} without a report"
    return f"the analysis {what}" + (f": {last}" if last else "")
