"""A wall-clock limit around user code (import, construction, forward), for ``--timeout``.

SIGALRM interrupts Python code (an endless loop, a sleep, a slow constructor); a single long
C++ operation finishes first. The exception derives from BaseException so that user code's
``except Exception:`` cannot swallow it; code that swallows BaseException too is stopped by the
worker's hard kill (``pipeline/workers.py``). Outside the main thread (or on Windows) no limit
applies here.

The alarm never lands inside an import of torch's own modules (``torch._dynamo`` loads lazily,
on the first meta-device op that needs it): an interrupted import leaves torch half-registered
and crashes the next use. It waits until that import is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Iterator


class TimeLimitExceeded(BaseException):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds


# Exceptions a broad ``except BaseException`` around user code must let through.
PASS_THROUGH = (KeyboardInterrupt, TimeLimitExceeded)


_RETRY = 0.05  # seconds between looks while torch is importing


def _importing_torch(frame) -> bool:
    """Whether ``frame`` runs inside the import of a torch module."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_find_and_load" and "importlib._bootstrap" in code.co_filename:
            name = frame.f_locals.get("name")
            if isinstance(name, str) and (name == "torch" or name.startswith("torch.")):
                return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    usable = (seconds and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        if _importing_torch(frame):
            signal.setitimer(signal.ITIMER_REAL, _RETRY)
            return
        raise TimeLimitExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds if not outer else min(seconds, outer))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # an outer limit was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 0.001))
