"""The command line (click). ``gradlint TARGET...`` is ``gradlint check TARGET...``.

Nothing here imports torch: ``--help`` and ``gradlint rule`` stay instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .config import ConfigError, find_pyproject, load_config, merge_cli, split_codes
from .version import __version__

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class DefaultGroup(click.Group):
    """A group whose unknown first word is a target for the default ``check`` command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["check", *args]
        elif not args:
            args = ["check"]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradlint")
def main() -> None:
    """Find vanishing and exploding gradients in PyTorch models before training.

    \b
    gradlint path/to/model.py                  every model the file defines
    gradlint path/to/model.py::build           a factory function
    gradlint 'path/to/model.py::Net(depth=20)' a class with literal arguments
    gradlint src/models/                       every .py file below the folder

    gradlint imports your file and builds the models (like pytest imports tests);
    `if __name__ == "__main__":` blocks do not run.
    """


def _formats() -> tuple[str, ...]:
    from .report import formats

    return formats.names()


@main.command()
@click.argument("targets", nargs=-1)
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (GL1, GL101, ALL); replaces the default set.")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--format", "output_format", default=None, metavar="FORMAT",
              help="Output format: concise (default), full, json, github, sarif, mermaid.")
@click.option("--verify", is_flag=True, default=None, help="Measure one real forward/backward pass and compare.")
@click.option("--device", default=None, help="Device for --verify: cpu (default), cuda, cuda:N or auto.")
@click.option("--batch-size", type=int, default=None, help="Batch size of the inferred inputs (default 8).")
@click.option("--seed", type=int, default=None, help="Random seed for --verify: weights, inputs, dropout, loss (default 0).")
@click.option("--input-shape", default=None, metavar="N,C,H,W", help="Input shape when the file has no example_inputs().")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--show-fixes", is_flag=True, help="Print each finding's ranked fixes and their predicted effect under it.")
@click.option("--fix", "apply_fixes", is_flag=True,
              help="Apply the best safe fix (initial weights only) of each model to its source, then re-lint.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff: apply an architecture change when it is predicted better than every safe fix.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the patch --fix would make, without writing files.")
@click.option("--statistics", is_flag=True, help="Count the findings per code instead of listing them (json with --format json).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="pyproject.toml to read [tool.gradlint] from (default: the nearest one).")
@click.option("--timeout", type=float, default=None, help="Seconds allowed per model (default 120).")
@click.option("--chart", is_flag=True, default=None, help="Draw gradient magnitude against depth in the terminal.")
@click.option("--plot", default=None, metavar="FILE.png", help="Save gradient-norm-by-depth and histogram plots (implies --verify; needs matplotlib).")
@click.option("--tensorboard", default=None, metavar="DIR", help="Write per-layer norms and histograms as TensorBoard events (implies --verify).")
@click.option("--no-cache", is_flag=True, help="Analyse every file again instead of reusing cached results.")
@click.option("-j", "--jobs", type=int, default=1, show_default=True,
              help="Files analysed in parallel, in separate processes (0: one per CPU).")
@click.option("--debug", is_flag=True, help="Show tracebacks of failures.")
def check(targets: tuple[str, ...], select, extend_select, ignore, output_format, verify, device, batch_size, seed,
          input_shape, exit_zero, show_fixes, apply_fixes, unsafe_fixes, show_diff, statistics, config_path, timeout,
          chart, plot, tensorboard, no_cache, jobs, debug) -> None:
    """Analyse the models in TARGETS (files, folders, file.py::Name)."""
    from .ir import errors

    errors.DEBUG = debug
    try:
        config = _load_config(config_path, targets)
        shape = _parse_shape(input_shape)
        merge_cli(config, {
            "select": split_codes(select), "extend_select": split_codes(extend_select) or [],
            "ignore": split_codes(ignore) or [], "verify": verify, "device": device, "batch_size": batch_size,
            "seed": seed, "input_shape": shape, "timeout": timeout, "chart": chart, "plot": plot,
            "tensorboard": tensorboard,
        })
        from .rules import check_rule_options, needs_verify, select_rules

        enabled = select_rules(config.select, config.extend_select, config.ignore)
        check_rule_options(config.rules, config.source)
        from .verify.options import prepare

        prepare(config)  # --plot/--tensorboard imply --verify; missing extras and CUDA are usage errors
        fmt = output_format or "concise"
        if fmt not in _formats():
            raise ConfigError(f"--format {fmt}: expected one of {', '.join(_formats())}")
    except ConfigError as e:
        click.echo(f"gradlint: error: {e}", err=True)
        sys.exit(EXIT_ERROR)

    unrunnable = [] if config.verify else [c for c in needs_verify((config.select or []) + config.extend_select)
                                               if c in enabled]
    if unrunnable:
        click.echo(f"gradlint: note: {', '.join(unrunnable)} measure one batch and run only with --verify", err=True)

    specs = list(targets) or [_spec_from_config(s, config) for s in config.models]
    if not specs:
        click.echo("gradlint: nothing to analyze (give a file, a folder or file.py::Name)", err=True)
        sys.exit(EXIT_CLEAN)

    from .pipeline.run import run

    if jobs == 0:
        jobs = os.cpu_count() or 1
    use_cache = config.cache and not no_cache and not debug and not os.environ.get("GRADLINT_NO_CACHE")
    try:
        report, session = run(specs, config, enabled, jobs=max(jobs, 1), use_cache=use_cache)
    except KeyboardInterrupt:
        click.echo("gradlint: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - gradlint's own bug: one line, not a traceback
        if debug:
            raise
        click.echo(f"gradlint: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)", err=True)
        sys.exit(EXIT_ERROR)

    if any(m.fixes for m in report.models):
        from .fix.apply import annotate

        annotate(report)  # a fix whose edit cannot be made on today's source is manual
    if unsafe_fixes and not (apply_fixes or show_diff):
        click.echo("gradlint: note: --unsafe-fixes only matters with --fix or --diff", err=True)
    if show_diff or apply_fixes:
        report, changed = _fix(report, show_diff, unsafe_fixes,
                               lambda: run(specs, config, enabled, jobs=max(jobs, 1), use_cache=use_cache)[0])
        if show_diff:
            sys.exit(EXIT_FINDINGS if changed and not exit_zero else EXIT_CLEAN)

    from .report import formats

    if statistics:
        from .report.statistics import render_statistics

        render_statistics(report, sys.stdout, as_json=fmt == "json")
    else:
        formats.render(fmt, report, sys.stdout, show_fixes=show_fixes, chart=bool(config.chart))
    if config.plot or config.tensorboard:
        from .report.outputs import OutputError, write_files

        try:
            write_files(report, config)
        except OutputError as e:
            report.usage_errors.append(str(e))
    for msg in report.usage_errors:
        click.echo(f"gradlint: error: {msg}", err=True)
    for msg in report.messages:
        click.echo(f"gradlint: {msg}", err=True)
    for msg in session.internal_errors:
        click.echo(f"gradlint: internal error: {msg}", err=True)
    sys.stdout.flush()
    if session.internal_errors or report.usage_errors:
        sys.exit(EXIT_ERROR)
    if report.findings and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


def _fix(report, diff_only: bool, unsafe: bool, relint):
    """--diff prints the patch; --fix writes it and returns the re-lint of the rewritten files."""
    from .fix.apply import commit, rewrite

    plan = rewrite(report, unsafe)
    for chosen, why in plan.skipped:
        click.echo(f"gradlint: not fixed: {chosen.model.target}: {chosen.fix.title}: {why}", err=True)
    if diff_only:
        patch = plan.diff()
        sys.stdout.write(patch)
        n = len(plan.changed)
        click.echo(f"gradlint: --fix would change {n} file{'s' if n != 1 else ''} ({len(plan.chosen)} fixes)"
                   if n else "gradlint: nothing to fix", err=True)
        return report, bool(n)
    if not plan.changed:
        unfixable = [m.target for m in report.models if m.fixes and not any(
            c.model is m for c in plan.chosen)]
        if unfixable:
            hint = "" if unsafe else " (--unsafe-fixes allows architecture changes)"
            click.echo(f"gradlint: no automatic fix for {', '.join(unfixable)}{hint}", err=True)
        return report, False
    outcome = commit(plan, relint)
    for chosen, after in outcome.applied:
        now = after.summary if after is not None else None
        result = f"; after the rewrite: {now.estimated_attenuation:.1e} ({now.verdict})" if now and \
            now.estimated_attenuation is not None else ""
        att = chosen.fix.predicted_attenuation
        click.echo(f"gradlint: fixed {chosen.model.target}: {chosen.fix.title} (predicted "
                   f"{att:.1e}, {chosen.fix.predicted_verdict}){result}", err=True)
    for chosen, why in outcome.restored:
        click.echo(f"gradlint: error: undid the fix of {chosen.model.target} ({chosen.fix.title}): {why}; "
                   "its files are as they were", err=True)
    for chosen, why in outcome.mismatched:
        click.echo(f"gradlint: warning: {chosen.model.target}: {why}", err=True)
    return outcome.report, True


def _spec_from_config(spec: str, config) -> str:
    from .load.targets import parse_target

    t = parse_target(spec)
    if config.root is not None and not Path(t.path).is_absolute():
        from .ir.source import display_path

        path = display_path(str(config.root / t.path))
        return f"{path}::{t.call_text or t.attr}" if t.attr else path
    return spec


def _load_config(config_path: str | None, targets: tuple[str, ...]):
    if config_path:
        p = Path(config_path)
        if not p.is_file():
            raise ConfigError(f"--config {config_path}: no such file")
        return load_config(p)
    start = Path(targets[0].split("::")[0]) if targets else Path.cwd()
    if not start.exists():
        start = Path.cwd()
    return load_config(find_pyproject(start))


def _parse_shape(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        shape = [int(x) for x in text.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--input-shape {text}: expected integers like 8,3,32,32") from None
    if not shape or any(s <= 0 for s in shape):
        raise ConfigError(f"--input-shape {text}: expected positive integers like 8,3,32,32")
    return shape


@main.command()
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every rule.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def rule(code: str | None, show_all: bool, output_format: str) -> None:
    """Show a rule's documentation (gradlint rule GL101), or list them all (--all)."""
    import json

    from .rules import all_rules, get_rule

    if show_all or not code:
        rules = all_rules()
        if output_format == "json":
            click.echo(json.dumps([r.to_json() for r in rules.values()], indent=2))
            return
        for c, r in rules.items():
            default = "" if r.default_enabled else "  (off by default)"
            click.echo(f"{c}  {r.name:<32} {r.severity:<8} {r.summary}{default}")
        return
    r = get_rule(code)
    if r is None:
        click.echo(f"gradlint: error: unknown rule {code!r}; `gradlint rule --all` lists them", err=True)
        sys.exit(EXIT_ERROR)
    if output_format == "json":
        click.echo(json.dumps(r.to_json(), indent=2))
    else:
        click.echo(r.doc_markdown())


@main.command()
@click.option("--python", "interpreter", default=None, metavar="PATH",
              help="Interpreter that runs the analysis, with torch and gradlint installed (default: this one).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds one analysis may take before it is stopped (default 60).")
def lsp(interpreter: str | None, timeout: float | None) -> None:
    """Run the language server on stdin/stdout (needs the lsp extra: pip install 'gradlint[lsp]').

    Diagnostics for Python files that define models, on open and on save. The analysis runs in a
    subprocess of --python (or the `interpreter` initialization option), so your code cannot take
    the server down.
    """
    try:
        from .lsp.server import serve
    except ModuleNotFoundError as e:
        # pygls 1.x lacks pygls.lsp.server: the same remedy.
        if (e.name or "").split(".")[0] not in ("pygls", "lsprotocol", "cattrs"):
            raise
        click.echo(f"gradlint: error: `gradlint lsp` needs pygls>=2 ({e}); install the extra: pip install 'gradlint[lsp]'",
                   err=True)
        sys.exit(EXIT_ERROR)
    try:
        serve(interpreter=interpreter, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - gradlint's own bug: one line, not a traceback
        click.echo(f"gradlint: internal error: {type(e).__name__}: {e}", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
