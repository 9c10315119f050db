"""Renderers: each takes a finished ``Report`` and writes text; no analysis happens here."""
