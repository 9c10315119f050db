"""The command line (click). ``gradlint TARGET...`` is ``gradlint check TARGET...``.

Nothing here imports torch: ``--help`` and ``gradlint rule`` stay instant.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import click

from .config import ConfigError, find_pyproject, load_config, merge_cli, parse_input_shape, split_codes
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
@click.option("--dtype", default=None, metavar="DTYPE",
              help="float32, float16 or bfloat16: the range in which signals must not underflow or overflow "
                   "(GL204; default: the model's parameter dtype); with --verify, measured under autocast.")
@click.option("--input-shape", multiple=True, metavar="[DTYPE:]N,C,H,W",
              help="Input shape when the file has no example_inputs(): 8,3,32,32, long:8,35 for token ids; "
                   "repeat it for each input of forward().")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--show-fixes", is_flag=True, help="Print each finding's ranked fixes and their predicted effect under it.")
@click.option("--fix", "apply_fixes", is_flag=True,
              help="Apply the best safe fix (initial weights only) of each model to its source, then re-lint.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff: apply an architecture change when it is predicted better than every safe fix.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the patch --fix would make, without writing files.")
@click.option("--show-notes", is_flag=True, help="Also print notes (severity info) in concise and github output.")
@click.option("--statistics", is_flag=True, help="Count the findings per code instead of listing them (json with --format json).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="pyproject.toml to read [tool.gradlint] from (default: the nearest one).")
@click.option("--timeout", type=float, default=None, callback=lambda ctx, p, v: _positive_seconds(v),
              help="Seconds allowed for importing a file, and for building and for analysing each model (default 120).")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="Address space per analysis worker, e.g. 8GiB (the default), 512MiB; 0 or none: no cap.")
@click.option("--chart", is_flag=True, default=None, help="Draw gradient magnitude against depth in the terminal.")
@click.option("--plot", default=None, metavar="FILE.png", help="Save gradient-norm-by-depth and histogram plots (implies --verify; needs matplotlib).")
@click.option("--tensorboard", default=None, metavar="DIR", help="Write per-layer norms and histograms as TensorBoard events (implies --verify).")
@click.option("--depth", type=click.IntRange(min=1), default=None, metavar="K",
              help="With --verify: measure a copy with K of the model's repeated blocks (same width) and "
                   "compare it with its estimate (implies --verify).")
@click.option("--shard-units", multiple=True, metavar="NAMES",
              help="Under torchrun: the modules FSDP2 shards as units (class names or name patterns; default: "
                   "each repeated block).")
@click.option("--no-cache", is_flag=True, help="Analyse every file again instead of reusing cached results.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
              help="Files analysed in parallel, each in its own worker process (0: one per CPU).")
@click.option("--with-dependents", is_flag=True,
              help="Also analyse the model files that import a given file, as recorded by earlier runs (pre-commit).")
@click.option("--debug", is_flag=True, help="Show tracebacks of failures.")
def check(targets: tuple[str, ...], select, extend_select, ignore, output_format, verify, device, batch_size, seed,
          dtype, input_shape, exit_zero, show_fixes, apply_fixes, unsafe_fixes, show_diff, show_notes, statistics,
          config_path, timeout, memory_limit, chart, plot, tensorboard, depth, shard_units, no_cache, jobs,
          with_dependents, debug) -> None:
    """Analyse the models in TARGETS (files, folders, file.py::Name)."""
    from .ir import errors

    errors.DEBUG = debug
    try:
        config = _load_config(config_path, targets)
        shape = [parse_input_shape(s, "--input-shape") for s in input_shape] or None
        merge_cli(config, {
            "select": split_codes(select), "extend_select": split_codes(extend_select) or [],
            "ignore": split_codes(ignore) or [], "verify": verify, "device": device, "batch_size": batch_size,
            "seed": seed, "input_shape": shape, "timeout": timeout, "chart": chart, "plot": plot,
            "tensorboard": tensorboard, "depth": depth, "shard_units": split_codes(shard_units),
            "dtype": _parse_dtype(dtype),
        })
        if memory_limit is not None:
            config.memory_limit = _parse_memory_limit(memory_limit)
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

    named = [s for s in (config.select or []) + config.extend_select if s.strip().upper() != "ALL"]
    unrunnable = [] if config.verify else [c for c in needs_verify(named) if c in enabled]
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
    ranks = _start_ranks(config)
    rank = ranks.rank if ranks is not None else 0
    if ranks is not None:
        # every rank analyses in this process, in the same order, with no cache: they must all
        # reach the same collectives
        jobs, use_cache = 1, False
    try:
        # Under torchrun the ranks' collectives live in this process: no worker processes then.
        report, session = run(specs, config, enabled, jobs=max(jobs, 1), use_cache=use_cache,
                              isolate=ranks is None, with_dependents=with_dependents)
    except KeyboardInterrupt:
        click.echo("gradlint: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - gradlint's own bug: one line, not a traceback
        if debug:
            raise
        click.echo(f"gradlint: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)", err=True)
        sys.exit(EXIT_ERROR)
    except BaseException as e:  # a rank that failed mid-pass (verify.distributed.RankFailure) ends its process
        _end_failed_rank(e)
        raise

    from .report import formats

    if ranks is not None:
        report.run = ranks.to_json()
        _stop_ranks()
    if rank != 0:  # only rank 0 writes the report; the others exit with the same code
        sys.exit(EXIT_ERROR if session.internal_errors or report.usage_errors
                 else EXIT_FINDINGS if report.problems and not exit_zero else EXIT_CLEAN)
    # only rank 0 gets here: one process rewrites the files
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

    if statistics:
        from .report.statistics import render_statistics

        render_statistics(report, sys.stdout, as_json=fmt == "json", show_notes=show_notes)
    else:
        formats.render(fmt, report, sys.stdout, show_fixes=show_fixes, chart=bool(config.chart), show_notes=show_notes)
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
    if report.problems and not exit_zero:
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


def _start_ranks(config):
    """Under torchrun with --verify: join the process group (None otherwise, or without --verify,
    where each rank's static analysis needs no other rank and only rank 0 prints)."""
    from .verify.distributed import DistributedError, torchrun_env

    try:
        env = torchrun_env()
        if env is None:
            return None
        if not config.verify:
            if env["rank"] != 0:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - only rank 0 prints
            return None
        from .verify.distributed import start

        return start(config.device, config.timeout)
    except DistributedError as e:
        click.echo(f"gradlint: error: {e}", err=True)
        sys.exit(EXIT_ERROR)


def _stop_ranks() -> None:
    from .verify.distributed import stop

    try:
        stop()
    except Exception:  # noqa: BLE001 - the report is what matters now
        pass


def _end_failed_rank(e: BaseException) -> None:
    """A rank that failed mid-pass ends its process now: its peers wait in a collective it will
    never join, and torchrun (or their timeout) ends them."""
    from .verify.distributed import RankFailure

    if isinstance(e, RankFailure):
        click.echo(f"gradlint: error: {e.message}; stopping this rank (torchrun or the --timeout of the "
                   "collectives stops the others)", err=True)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(EXIT_ERROR)


def _spec_from_config(spec: str, config) -> str:
    from .load.targets import parse_target

    t = parse_target(spec)
    if config.root is not None and not Path(t.path).is_absolute():
        from .ir.source import display_path

        path = display_path(str(config.root / t.path))
        return f"{path}::{t.expr}" if t.expr is not None else path
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


def _parse_dtype(text: str | None) -> str | None:
    from .ir import dtypes

    if text is None:
        return None
    name = dtypes.normalize(text)
    if name not in dtypes.CHOICES:
        raise ConfigError(f"--dtype {text}: expected one of {', '.join(dtypes.CHOICES)}")
    return name


def _positive_seconds(value: float | None) -> float | None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise click.BadParameter(f"{value:g}: expected a positive number of seconds")
    return value


def _parse_memory_limit(text: str) -> int | None:
    from .config import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise ConfigError(f"--memory-limit {text}: expected a size like 8GiB or 512MiB (0 or none: no cap)") from None


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
