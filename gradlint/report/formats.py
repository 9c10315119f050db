"""The output formats, by name. A format is a function (report, stream, **options) -> None."""

from __future__ import annotations

from typing import IO, Callable

from .model import Report

Renderer = Callable[..., None]


def _registry() -> dict[str, Renderer]:
    from . import text

    formats: dict[str, Renderer] = {
        "concise": lambda r, out, show_fixes=False, **_: text.render_concise(r, out, show_fixes),
        "full": lambda r, out, **_: text.render_full(r, out),
        "json": lambda r, out, **_: text.render_json(r, out),
    }
    return formats


def names() -> tuple[str, ...]:
    return tuple(_registry())


def render(name: str, report: Report, out: IO[str], **options) -> None:
    _registry()[name](report, out, **options)
