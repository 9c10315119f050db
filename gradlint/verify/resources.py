"""Devices and memory for the measured pass: which device, whether the model fits, and the peak
memory the pass used.

On CUDA the allocator's own peak counter is exact. On the CPU PyTorch keeps no such counter; on
Linux the kernel's high-water mark of resident memory (VmHWM) is reset before the pass (by
writing 5 to /proc/self/clear_refs) and read after it, which costs nothing during the pass.
Elsewhere a background thread samples resident memory every millisecond. The peak is reported
above the memory in use when the pass began.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..ir.errors import StageError


class DeviceError(ValueError):
    """A device that cannot be used (``--device cuda`` without CUDA)."""


def resolve_device(requested: str | None) -> str:
    """``auto`` -> cuda when available, else cpu. ``cuda`` without CUDA is an error."""
    import torch

    req = (requested or "cpu").strip().lower()
    if req == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = req.partition(":")
    if kind == "cpu":
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {requested}: CUDA is not available in this environment "
                              "(torch.cuda.is_available() is False); use --device cpu or --device auto")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise DeviceError(f"--device {requested}: no such CUDA device ({torch.cuda.device_count()} visible)")
        return req
    raise DeviceError(f"--device {requested}: expected cpu, cuda, cuda:N or auto")


def parameter_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers (works on the meta device too)."""
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    return n + sum(b.numel() * b.element_size() for b in model.buffers())


def available_bytes(device: str) -> int | None:
    """Memory free for new allocations on ``device``; None when unknown. On the CPU also what the
    process's address-space cap (``memory-limit``) leaves: a worker cannot use free memory past it."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    free = _system_available()
    left = cap_left_bytes()
    if left is not None:
        free = left if free is None else min(free, left)
    return free


def limited_by_cap(device: str) -> bool:
    """Whether the address-space cap, not the machine's free memory, bounds ``available_bytes``."""
    if device.startswith("cuda"):
        return False
    left, free = cap_left_bytes(), _system_available()
    return left is not None and (free is None or left < free)


def _system_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cap_left_bytes() -> int | None:
    """Address space this process may still map under RLIMIT_AS, or None without a cap."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    return max(soft - size, 0)


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_fits(model: Any, device: str, already_there: bool) -> None:
    """Refuse before allocating when weights and gradients alone would not fit.

    ``already_there``: the weights are on ``device`` already, so only the gradients are new.
    """
    need = parameter_bytes(model) * (1 if already_there else 2)
    free = available_bytes(device)
    if free is None or need <= 0.9 * free:
        return
    capped = limited_by_cap(device)
    raise StageError(
        "verify",
        f"the model needs about {gib(need)} on {device} for {'gradients' if already_there else 'weights and gradients'} "
        f"before any activation, and {gib(free)} is free" + (" under the memory cap" if capped else ""),
        hint=("raise memory-limit (--memory-limit 32GiB, or 0 for no cap) when the machine has the memory, or "
              "verify a smaller configuration" if capped else
              "verify a smaller configuration of the model (e.g. 'model.py::Net(depth=4)'), or another --device"),
    )


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _high_water_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_high_water() -> bool:
    """Linux >= 4.0: reset this process's peak-RSS counter (also what getrusage reports)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return _high_water_bytes() is not None


@dataclass
class PeakMemory:
    """``with PeakMemory(device) as pm: ...`` then ``pm.peak`` (bytes above the start) and
    ``pm.method``."""

    device: str
    interval: float = 0.001
    peak: int | None = None
    method: str = ""

    def __enter__(self) -> "PeakMemory":
        self._stop = threading.Event()
        self._thread = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.method = "CUDA allocator peak"
            return self
        self._base = _rss_bytes()
        if self._base is not None and _reset_high_water():
            self.method = "peak resident memory (VmHWM)"
            return self
        if self._base is None:  # no /proc: the process's lifetime high-water mark, if it rises
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.method = "max RSS (approximate)"
            return self
        self._max = self._base
        self.method = "resident memory, sampled every 1 ms"
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss_bytes()
            if rss is not None and rss > self._max:
                self._max = rss
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            self.peak = max(0, torch.cuda.max_memory_allocated(self.device) - self._base)
            return
        if self.method.startswith("peak resident"):
            hwm = _high_water_bytes()
            self.peak = max(0, hwm - self._base) if hwm is not None else None
            return
        if self.method.startswith("max RSS"):
            self.peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._base)
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = _rss_bytes()
        if rss is not None:
            self._max = max(self._max, rss)
        self.peak = self._max - self._base
