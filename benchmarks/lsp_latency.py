"""Save -> diagnostics in the editor: the warm worker against a fresh interpreter per save.

    python benchmarks/lsp_latency.py                        # writes benchmarks/LSP_LATENCY.md
    python benchmarks/lsp_latency.py --baseline /work/main  # also another checkout's server

For each example model, a real LSP client (pygls) starts ``gradlint lsp``, opens the file and
saves it ``--saves`` times, each time with new text (a comment appended, so nothing is served
from the server's cache), and times each save until the server publishes the file's
diagnostics. The first save is the first analysis (the worker may still be importing torch);
the figure is the median of the others. Target (issue 12): < 0.6 s.

The cold path is what every save cost before the warm worker: ``python -m gradlint check FILE
--format json`` in a fresh interpreter, timed the same number of times. ``--baseline`` also
runs another checkout's own server through the same client (its PYTHONPATH).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "LSP_LATENCY.md"
EXAMPLES = ["deep_sigmoid_mlp.py", "resnet_small.py", "transformer_encoder.py"]


async def server_latencies(checkout: Path, model: Path, saves: int, options: dict) -> list[float]:
    """Seconds from each save to the diagnostics of the file, through a real LSP client."""
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("gradlint-bench", "1")
    published: list[tuple[float, str]] = []
    logs: list[str] = []

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _diagnostics(ls, params: types.PublishDiagnosticsParams) -> None:
        published.append((time.monotonic(), params.uri))

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _log(ls, params: types.LogMessageParams) -> None:
        logs.append(params.message)

    env = dict(os.environ, PYTHONPATH=str(checkout), GRADLINT_NO_CACHE="1")
    await client.start_io(sys.executable, "-P", "-m", "gradlint", "lsp", env=env, cwd=str(model.parent))
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=model.parent.as_uri(), initialization_options=options))
    client.initialized(types.InitializedParams())
    uri = model.as_uri()
    text = model.read_text(encoding="utf-8")
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    deadline = time.monotonic() + 300  # a warm server says when it is ready; an older one does not
    while time.monotonic() < deadline and not any("ready" in m for m in logs) and not published:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    seconds = []
    try:
        for i in range(saves + 1):
            edited = text + f"\n# edit {i}\n"
            model.write_text(edited, encoding="utf-8")
            n = len(published)
            t0 = time.monotonic()
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=i + 2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)]))
            client.text_document_did_save(types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri), text=edited))
            while not any(u == uri for _, u in published[n:]):
                if time.monotonic() - t0 > 300:
                    raise SystemExit(f"no diagnostics for {model.name} within 300 s: {logs[-5:]}")
                await asyncio.sleep(0.005)
            seconds.append(next(t for t, u in published[n:] if u == uri) - t0)
    finally:
        await asyncio.wait_for(client.shutdown_async(None), 60)
        client.exit(None)
        await client.stop()
    return seconds


def cold_latencies(model: Path, runs: int) -> list[float]:
    """A fresh interpreter per save: what the server ran before it had a warm worker."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADLINT_NO_CACHE="1")
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-P", "-m", "gradlint", "check", str(model), "--format", "json",
                        "--exit-zero"], cwd=model.parent, env=env, capture_output=True, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--saves", type=int, default=7, help="timed saves after the first analysis")
    ap.add_argument("--baseline", type=Path, help="another gradlint checkout whose server to time the same way")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in EXAMPLES:
            model = Path(tmp) / name
            model.write_text((ROOT / "examples" / name).read_text(encoding="utf-8"), encoding="utf-8")
            warm = asyncio.run(server_latencies(ROOT, model, args.saves, {"timeout": 120}))
            cold = cold_latencies(model, max(3, args.saves // 2))
            base = (asyncio.run(server_latencies(args.baseline.resolve(), model, max(3, args.saves // 2),
                                                 {"timeout": 120}))[1:] if args.baseline else None)
            rows.append((name, warm, cold, base))
            print(f"{name}: warm first {warm[0]:.2f} s, median {statistics.median(warm[1:]):.2f} s; "
                  f"cold median {statistics.median(cold):.2f} s"
                  + (f"; baseline server median {statistics.median(base):.2f} s" if base else ""), file=sys.stderr)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = [
        "# Editor latency: save -> diagnostics",
        "",
        f"Generated by `python benchmarks/lsp_latency.py{' --baseline ' + str(args.baseline) if args.baseline else ''}`"
        f" at {commit} (Python {platform.python_version()}, {os.cpu_count()} CPUs, shared machine; load average at "
        f"the end {os.getloadavg()[0]:.1f}).",
        "",
        f"A pygls client saves each example {args.saves + 1} times with new text; the warm figure is the median "
        "save -> diagnostics after the first analysis (target < 0.6 s). Cold: a fresh "
        "`python -m gradlint check FILE --format json` per save, what the server ran before the warm worker.",
        "",
        "| model | first analysis | warm median | warm saves | cold median | warm / cold |"
        + (" baseline server median |" if args.baseline else ""),
        "|---|---|---|---|---|---|" + ("---|" if args.baseline else ""),
    ]
    for name, warm, cold, base in rows:
        wm, cm = statistics.median(warm[1:]), statistics.median(cold)
        lines.append(f"| {name} | {warm[0]:.2f} s | **{wm:.2f} s** | {', '.join(f'{s:.2f}' for s in warm[1:])} | "
                     f"{cm:.2f} s | {wm / cm:.2f} |" + (f" {statistics.median(base):.2f} s |" if base else ""))
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
