"""The pipeline: targets in, ``Report`` out. ``run`` sequences the stages for every file,
``stages`` holds the ``Stage`` protocol and the stages themselves, ``suppress`` applies selection
and ``# noqa``, ``cache`` keeps results of unchanged files, ``records`` is the report's shape."""
