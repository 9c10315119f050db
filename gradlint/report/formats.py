"""The output formats, by name. A format is a function (report, stream, **options) -> None."""

from __future__ import annotations

from typing import IO, Callable

from ..pipeline.records import Report

Renderer = Callable[..., None]


# Formats living in their own modules: name -> (module, function). A module that is not there
# (yet) simply does not offer its format.
_PLUGGED = {
    "github": ("github", "render_github"),
    "sarif": ("sarif", "render_sarif"),
    "mermaid": ("mermaid", "render_mermaid"),
}


def _registry() -> dict[str, Renderer]:
    import importlib

    from . import text

    formats: dict[str, Renderer] = {
        "concise": lambda r, out, show_fixes=False, chart=False, show_notes=False, **_: text.render_concise(
            r, out, show_fixes, chart, show_notes),
        "full": lambda r, out, **_: text.render_full(r, out),
        "json": lambda r, out, **_: text.render_json(r, out),
    }
    for name, (module, func) in _PLUGGED.items():
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ImportError:
            continue
        formats[name] = getattr(mod, func)
    return formats


def names() -> tuple[str, ...]:
    return tuple(_registry())


def render(name: str, report: Report, out: IO[str], **options) -> None:
    _registry()[name](report, out, **options)
