"""Checks of the verify options before any model is loaded: a usage error is exit code 2 with
one line, not a failure per model. No torch import unless a CUDA device is asked for."""

from __future__ import annotations

import importlib.util

from ..config import Config, ConfigError

# extra name -> (module it provides, the option that needs it)
EXTRAS = {"plot": ("matplotlib", "--plot"), "tensorboard": ("tensorboard", "--tensorboard")}


class MissingExtra(ConfigError):
    """An optional package an option needs is not installed."""


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require_extra(extra: str) -> None:
    module, option = EXTRAS[extra]
    if not installed(module):
        raise MissingExtra(f"{option} needs {module}, which is not installed: pip install 'gradlint[{extra}]'")


def prepare(config: Config) -> None:
    """``--plot``/``--tensorboard``/``--depth`` imply ``--verify`` (they draw the measurement); check the extras
    and the device up front."""
    if config.plot or config.tensorboard or config.depth:
        config.verify = True
    if not config.verify:
        return
    if config.plot:
        require_extra("plot")
    if config.tensorboard:
        require_extra("tensorboard")
    device = (config.device or "cpu").strip().lower()
    if device.partition(":")[0] not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"--device {config.device}: expected cpu, cuda, cuda:N or auto")
    if device.startswith("cuda"):
        from .resources import DeviceError, resolve_device

        try:
            resolve_device(config.device)
        except DeviceError as e:
            raise ConfigError(str(e)) from None
