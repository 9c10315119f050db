"""Render ``wild_results.json`` as ``WILD.md``. Reads only the JSON (standard library only).

Definitions the figures follow:

- **analyzed** (a try): gradlint's JSON report has at least one model with status ``analyzed``.
  The entry's *model* is the analyzed one with the most weight layers (a file's helper classes
  are analyzed too when their constructors need no arguments).
- **silent pass** (a try): exit 0 and nothing the user could act on — no model in the report (the
  "nothing" outcome; gradlint may print a one-line note on stderr, but stdout and the exit code
  say all is well), or an analyzed model with 0 weight layers and no warning or error.
- **estimate vs measurement**: ``summary.verdict`` of the static try against
  ``summary.measured_verdict`` of the ``--verify`` run of the same target.
- **false warning**: the measurement says healthy (or structural-zero) and the static try raised
  at least one warning or error other than GL0xx (analysis problems).
- **miss**: the measurement says vanishing or exploding and the static verdict does not.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any, Iterable

PROBLEM = ("warning", "error")


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ids(ids: Iterable[str], limit: int = 12) -> str:
    ids = list(ids)
    shown = ", ".join(f"`{i}`" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _worked(r: dict) -> dict | None:
    """The try that analyzed the model (first, else second), or None."""
    if r.get("worked") == "first":
        return r["first"]
    if r.get("worked") == "second":
        return r.get("second")
    return None


def _silent(t: dict | None) -> bool:
    if t is None:
        return False
    if t["outcome"] == "nothing":
        return True
    if t["outcome"] == "analyzed" and t.get("layers") == 0:
        return not any(f.get("severity") in PROBLEM for f in t.get("findings") or [])
    return False


def _gl205_confirmed(r: dict) -> bool:
    """GL205 claims the ordered phase, not a gradient problem: the --verify run measures the batch's
    cosine similarity at the layer it names and keeps it a warning only when it agrees."""
    return any(f["code"] == "GL205" and f.get("severity") in PROBLEM for f in (r.get("verify") or {}).get("findings") or [])


def _unconfirmed(r: dict) -> list[dict]:
    """The static problems a gradient-healthy measurement does not confirm."""
    return [f for f in _problems(_worked(r)) if not (f["code"] == "GL205" and _gl205_confirmed(r))]


def _problems(t: dict) -> list[dict]:
    return [f for f in t.get("findings") or [] if f.get("severity") in PROBLEM and not f["code"].startswith("GL0")]


def _codes(t: dict | None) -> str:
    if not t:
        return "-"
    sev = {"error": "E", "warning": "W", "info": "i"}
    counts = Counter((f["code"], sev.get(f.get("severity"), "?")) for f in t.get("findings") or [])
    return ", ".join(f"{c}{'' if n == 1 else f'x{n}'}({s})" for (c, s), n in sorted(counts.items())) or "-"


def _try_cell(t: dict | None) -> str:
    if t is None:
        return "-"
    if t["outcome"] == "analyzed":
        return "analyzed"
    return f"{t['outcome']} ({t.get('stage', '?')})"


_REASONS = [
    # (pattern on "stage: message", the reason as the report names it)
    (r"no models found", "exit 0, \"no models found\": the file's model is not an argument-free class defined in it "
                         "(a factory, a module-level instance, a class needing arguments)"),
    (r"called sys\.exit", "import: the file called sys.exit() (argparse at module level parsed gradlint's argv)"),
    (r"not an nn\.Module class or a factory", "target names a module-level instance: \"X is a <Model>, not an "
                                              "nn.Module class or a factory\""),
    (r"returned \w+, not an nn\.Module", "the target returned something that is not an nn.Module"),
    (r"forward\(\) missing \d+ required positional argument", "build: a module instance was called as a factory "
                                                              "(forward() missing an argument)"),
    (r"could not infer|no example inputs|example_inputs", "inputs: could not infer example inputs"),
    (r"mat1 and mat2 shapes cannot be multiplied|shape .* is invalid|size mismatch|must match the size|"
     r"Expected .*input|expected input|Given groups|to have \d+ channels|out of range|KeyError: \d",
     "capture: the guessed input shape does not fit the model"),
    (r"Name or service not known|Cannot connect to host|urlopen|HTTPSConnection|Max retries|offline",
     "import/build: the file downloads something (dataset or weights)"),
    (r"^import: .*No module named", "import: a module is missing"),
    (r"^import:", "import: the file raised at import"),
    (r"^build:", "build: the constructor raised"),
    (r"^capture:", "capture: every capture method failed (fx, export, hooks)"),
    (r"^estimate:", "estimate: the estimate failed"),
    (r"^verify:", "verify: the measured pass failed"),
    (r"must be Python literals", "target rejected (exit 2): arguments after `::` must be Python literals, so a "
                                 "config object or a module-level variable cannot be passed"),
    (r"^target:|^cli:|invalid target|cannot parse", "the command was rejected (exit 2)"),
]


def reason(t: dict) -> str:
    """A failure's reason, grouped so that the same cause on many models reads as one line."""
    if t["outcome"] == "timeout":
        return "timeout: no result within the benchmark's wall-clock limit"
    if t["outcome"] == "crashed":
        return f"crashed: {_normalize(t.get('message', ''))}"
    text = f"{t.get('stage', '?')}: {t.get('message', '')}"
    for pattern, name in _REASONS:
        if re.search(pattern, text):
            if " raised" in name or name.startswith(("capture: every", "estimate:", "verify:")):
                return f"{name} ({_exception(t.get('message', ''))})"
            return name
    return _normalize(text)


def _exception(message: str) -> str:
    m = re.match(r"\s*([A-Za-z_.]*(?:Error|Exception|Exit|Interrupt)\b)", message)
    return m.group(1) if m else _normalize(message)[:60]


def _normalize(text: str) -> str:
    text = re.sub(r"(/[\w.+-]+)+", "<path>", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\d+", "N", text)
    return text[:120]


def _stage_of(r: dict) -> str:
    """Where the entry ended: analyzed on the first/second try, or the last try's outcome."""
    if r.get("worked"):
        return f"analyzed ({r['worked']} try)"
    last = r.get("second") or r["first"]
    return f"{last['outcome']}"


def _edge(t: dict) -> str:
    """What the measurement saw at the first and last weight layers (grad RMS), or the layer count."""
    gl001 = [f for f in t.get("findings") or [] if f["code"] == "GL001"]
    if gl001:
        return f"GL001: {gl001[0]['message'][:80]}"
    edge = t.get("edge_layers")
    if not edge:
        return f"{t.get('layers', 0)} weight layers"
    rms = [((edge[k].get("measured") or {}).get("grad_rms")) for k in ("first", "last")]
    if any(v is None for v in rms):
        return f"{t.get('layers', 0)} weight layers"
    return f"grad RMS first {rms[0]:.1e}, last {rms[1]:.1e}"


def _static_verdict(r: dict) -> str:
    t = _worked(r)
    if t is None:
        return "not analyzed"
    return (t.get("summary") or {}).get("verdict") or f"no verdict ({t.get('layers', 0)} weight layers)"


def _measured_verdict(r: dict) -> str:
    v = r.get("verify")
    if not v:
        return "-"
    if v["outcome"] != "analyzed":
        return f"{v['outcome']}"
    return (v.get("summary") or {}).get("measured_verdict") or f"no verdict ({_edge(v)})"


def _err(s: dict) -> float | None:
    a, b = s.get("estimated_attenuation"), s.get("measured_attenuation")
    if a and b and a > 0 and b > 0:
        return abs(math.log10(a / b))
    return None


def render(data: dict) -> str:
    recs = [r for r in data.get("models", []) if not r.get("skipped")]
    skipped = [r for r in data.get("models", []) if r.get("skipped")]
    env = data.get("environment", {})
    out: list[str] = []
    w = out.append
    n = len(recs)

    w("# The wild corpus: gradlint on models as users write them\n")
    w("Generated by `benchmarks/wild.py` (the corpus: `benchmarks/wild_catalog.py`, `benchmarks/wild/`; the "
      "environment: `benchmarks/WILD_ENV.md`); do not edit by hand. Every entry is a model file run through the "
      "real CLI in a fresh process, exactly as written in the *first try* column (`--format json --select ALL` "
      "added), from the file's folder; when that analyzes nothing, the *second try* a user would write after "
      "reading the error; then `--verify` on the try that worked. All weights are random (nothing is downloaded).")
    if env:
        pk = env.get("packages") or {}
        code = env.get("gradlint_code_commit")
        w(f"\nEnvironment: Python {env.get('python')}, torch {pk.get('torch')}, torchvision {pk.get('torchvision')}; "
          f"gradlint from the checkout at `{env.get('gradlint_commit')}`"
          f"{f' (its gradlint/ last changed in `{code}`)' if code else ''}"
          f"{' with local changes' if env.get('gradlint_dirty') else ''}; "
          f"{env.get('cpus')} shared CPUs, {env.get('jobs')} entries at a time, {env.get('timeout_s'):g} s "
          "wall-clock limit per run."
          + (f" Load average when the last part finished: {', '.join(map(str, env['loadavg_at_end']))} (the CPUs are "
             "shared with other work; a slow model on a busy machine can hit gradlint's default 120 s --timeout)."
             if env.get("loadavg_at_end") else ""))

    # -- headline -----------------------------------------------------------------------------------
    first = [r for r in recs if r.get("worked") == "first"]
    either = [r for r in recs if r.get("worked")]
    silent_first = [r for r in recs if _silent(r["first"])]
    silent_any = [r for r in recs if _silent(r["first"]) or _silent(r.get("second"))
                  or (_worked(r) is not None and _silent(_worked(r)))]
    libs = sorted({r["library"] for r in recs if r["section"] == "library"})
    usable = sorted({r["library"] for r in recs if r["section"] == "library" and r.get("worked")})
    verified = [r for r in recs if (r.get("verify") or {}).get("outcome") == "analyzed"
                and (r["verify"].get("summary") or {}).get("measured_verdict")]
    pairs = []  # (record, static verdict of the worked try, measured verdict)
    for r in verified:
        static = (_worked(r).get("summary") or {}).get("verdict")
        pairs.append((r, static, r["verify"]["summary"]["measured_verdict"]))
    agree = [r for r, s, m in pairs if s == m]
    healthy_meas = [(r, s) for r, s, m in pairs if m in ("healthy", "structural-zero")]
    false_warn = [r for r, s in healthy_meas if _unconfirmed(r)]
    ordered = [r for r, s in healthy_meas if any(f["code"] == "GL205" for f in _problems(_worked(r)))]
    ordered_ok = [r for r in ordered if _gl205_confirmed(r)]
    bad_meas = [(r, s, m) for r, s, m in pairs if m in ("vanishing", "exploding")]
    misses = [r for r, s, m in bad_meas if s != m]
    no_estimate = [r for r in either if not (_worked(r).get("summary") or {}).get("verdict")]
    by_section = Counter(r["section"] for r in recs)

    w("\n## Headline\n")
    w("| figure | value |")
    w("|---|---|")
    w(f"| entries (library files / pattern files / repository files) | {n} ({by_section['library']} / "
      f"{by_section['patterns']} / {by_section['repo']}){f'; {len(skipped)} skipped' if skipped else ''} |")
    w(f"| libraries in the corpus / with at least one model analyzed | {len(libs)} / {len(usable)} |")
    w(f"| **analyzed on the first try** | **{len(first)}/{n} ({_pct(len(first), n)})** |")
    w(f"| **analyzed on the first or second try** (target >= 90%) | **{len(either)}/{n} ({_pct(len(either), n)})** |")
    w(f"| **silent passes on the first try** (target 0) | **{len(silent_first)}** |")
    w(f"| silent passes on any try | {len(silent_any)} |")
    quiet = [r for r in no_estimate if not any(f.get("severity") in PROBLEM for f in _worked(r).get("findings") or [])]
    w(f"| analyzed, but no estimate (verdict missing) / of which nothing reported at all | {len(no_estimate)} / "
      f"{len(quiet)}{': ' + _ids(r['id'] for r in quiet) if quiet else ''} |")
    w(f"| `--verify` measured | {len(verified)} of {len(either)} analyzed |")
    w(f"| static verdict agrees with the measurement | {len(agree)}/{len(pairs)} ({_pct(len(agree), len(pairs))}) |")
    w(f"| **false warnings**: healthy by measurement, static warning/error raised | **{len(false_warn)}/"
      f"{len(healthy_meas)}** |")
    w(f"| **misses**: vanishing/exploding by measurement, static verdict differs | **{len(misses)}/{len(bad_meas)}** |")
    designed = [r for r in recs if r.get("expect")]
    designed_ok = [r for r in designed if _static_verdict(r) == r["expect"]]
    w(f"| pattern files whose static verdict is the designed one | {len(designed_ok)}/{len(designed)} |")
    w("")
    w("Silent pass: exit 0 with no model in the report, or a model with 0 weight layers and no warning. "
      "False warning: the measured batch says healthy (or structural-zero) and the static run raised a GL1xx/GL2xx "
      "warning or error (a GL205 the measured cosine similarity confirms excepted: it claims the ordered phase, not "
      "a gradient problem). Miss: the measured batch says vanishing/exploding and the static verdict does not.")

    # -- by style and by section -------------------------------------------------------------------
    w("\n## By how the file makes its model\n")
    w("| style | entries | analyzed, first try | first or second | silent on the first try |")
    w("|---|---|---|---|---|")
    styles = defaultdict(list)
    for r in recs:
        styles[r["style"]].append(r)
    names = {"wrapper": "nn.Module subclass, no-argument constructor", "factory": "module-level factory function",
             "instance": "module-level `model = X(...)`", "config": "class needing a config object / arguments",
             "script": "script: argparse or data loading at import", "main": "class + `__main__` training loop"}
    for style, rs in sorted(styles.items(), key=lambda kv: -len(kv[1])):
        f1 = sum(r.get("worked") == "first" for r in rs)
        f2 = sum(bool(r.get("worked")) for r in rs)
        w(f"| {names.get(style, style)} | {len(rs)} | {f1} ({_pct(f1, len(rs))}) | {f2} ({_pct(f2, len(rs))}) | "
          f"{sum(_silent(r['first']) for r in rs)} |")
    w("")
    w("| section | entries | analyzed, first try | first or second |")
    w("|---|---|---|---|")
    for section in ("library", "patterns", "repo"):
        rs = [r for r in recs if r["section"] == section]
        if rs:
            f1 = sum(r.get("worked") == "first" for r in rs)
            f2 = sum(bool(r.get("worked")) for r in rs)
            w(f"| {section} | {len(rs)} | {f1} ({_pct(f1, len(rs))}) | {f2} ({_pct(f2, len(rs))}) |")

    # -- failure reasons ---------------------------------------------------------------------------
    w("\n## Why the tries failed\n")
    w("Every try that did not analyze a model, grouped by cause (first and second tries together; the count is "
      "tries, the examples are entry ids).\n")
    groups: dict[str, list[str]] = defaultdict(list)
    for r in recs:
        for key in ("first", "second"):
            t = r.get(key)
            if t and t["outcome"] != "analyzed":
                groups[reason(t)].append(r["id"] + ("" if key == "first" else " (2nd)"))
    w("| tries | reason | examples |")
    w("|---|---|---|")
    for why, ids in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        w(f"| {len(ids)} | {_cell(why)} | {_ids(ids, 6)} |")
    partial = [(r["id"], f) for r in either for f in _worked(r).get("findings") or [] if f["code"] == "GL001"]
    if partial:
        w("\nAnalyzed, but a later stage failed (GL001 on an analyzed model):\n")
        for mid, f in partial:
            w(f"- `{mid}`: {_cell(f['message'][:200])}")
    verify_failed = [r for r in recs if r.get("verify") and r["verify"]["outcome"] != "analyzed"]
    verify_gl001 = [(r["id"], f) for r in recs if (r.get("verify") or {}).get("outcome") == "analyzed"
                    for f in r["verify"].get("findings") or [] if f["code"] == "GL001"]
    if verify_failed or verify_gl001:
        w("\n`--verify` runs that failed:\n")
        for r in verify_failed:
            w(f"- `{r['id']}`: {r['verify']['outcome']} ({r['verify'].get('stage')}): "
              f"{_cell(r['verify'].get('message', '')[:200])}")
        for mid, f in verify_gl001:
            w(f"- `{mid}`: {_cell(f['message'][:200])}")

    # -- estimate vs measurement -------------------------------------------------------------------
    w("\n## Estimate against the measured batch\n")
    if not pairs:
        w("No `--verify` measurements.")
    else:
        matrix = Counter((s or "none", m) for _, s, m in pairs)
        verdicts = ["healthy", "vanishing", "exploding", "structural-zero", "none"]
        w("Rows: static verdict; columns: measured verdict.\n")
        w("| static \\ measured | " + " | ".join(verdicts[:4]) + " |")
        w("|---|" + "---|" * 4)
        for s in verdicts:
            if any(matrix.get((s, m)) for m in verdicts[:4]):
                w(f"| {s} | " + " | ".join(str(matrix.get((s, m), 0)) for m in verdicts[:4]) + " |")
        errs = sorted(((e, r["id"]) for r, _, _ in pairs
                       if (e := _err({**(_worked(r).get("summary") or {}),
                                      "measured_attenuation": r["verify"]["summary"].get("measured_attenuation")}))
                       is not None), reverse=True)
        if errs:
            es = sorted(e for e, _ in errs)
            w(f"\n|log10(estimated / measured attenuation)| over {len(es)} models with both nonzero: median "
              f"{es[len(es) // 2]:.2f} decades, {_pct(sum(e <= 1 for e in es), len(es))} within one decade. "
              "More than a decade off: " + (", ".join(f"`{i}` ({e:.1f})" for e, i in errs if e > 1) or "none") + ".")
        dis = [(r, s, m) for r, s, m in pairs if s != m]
        if dis:
            w("\nDisagreements: " + ", ".join(f"`{r['id']}` ({s or 'none'} vs {m})" for r, s, m in dis) + ".")
        if false_warn:
            w("\nFalse warnings (healthy by measurement): " + ", ".join(
                f"`{r['id']}` ({', '.join(sorted({f['code'] for f in _unconfirmed(r)}))})" for r in false_warn)
              + ".")
        if ordered:
            w(f"\nGL205 (inputs indistinguishable) on gradient-healthy models: {len(ordered)}; the measured cosine "
              f"similarity confirms {len(ordered_ok)} (" + ", ".join(f"`{r['id']}`" for r in ordered_ok)
              + "); a confirmed GL205 is not a false warning: it claims the ordered phase, not a gradient problem.")
        if bad_meas:
            w("\nVanishing/exploding by measurement: " + ", ".join(
                f"`{r['id']}` ({m}; static {s or 'none'}{'' if s == m else ': MISS'})" for r, s, m in bad_meas) + ".")
    no_verdict = [r for r in recs if (r.get("verify") or {}).get("outcome") == "analyzed"
                  and not (r["verify"].get("summary") or {}).get("measured_verdict")]
    if no_verdict:
        w("\nMeasured, but no measured verdict (no weight layer found, a ratio of zero gradients, or the verify "
          "stage failed): "
          + ", ".join(f"`{r['id']}` ({_edge(r['verify'])})" for r in no_verdict) + ".")
    expected = [r for r in recs if r.get("expect")]
    if expected:
        w("\nPattern files with a designed verdict:\n")
        w("| pattern | designed | static | measured |")
        w("|---|---|---|---|")
        for r in expected:
            w(f"| {r['id']} | {r['expect']} | {_static_verdict(r)} | {_measured_verdict(r)} |")

    # -- rules -------------------------------------------------------------------------------------
    w("\n## Which rules fired where\n")
    w("Static runs (the try that worked), then `--verify` runs; each model counted once per code.\n")
    for label, pick in (("static", _worked), ("verify", lambda r: r.get("verify")
                                                if (r.get("verify") or {}).get("outcome") == "analyzed" else None)):
        fired: dict[str, list[str]] = defaultdict(list)
        for r in recs:
            t = pick(r)
            for c in dict.fromkeys(f["code"] for f in (t or {}).get("findings") or []):
                fired[c].append(r["id"])
        w(f"**{label}**:\n")
        for code in sorted(fired):
            w(f"- {code} on {len(fired[code])}: {_ids(fired[code], 40)}")
        w("")

    # -- per library -------------------------------------------------------------------------------
    w("## Libraries\n")
    w("| library | version | entries | first try | first or second | verified |")
    w("|---|---|---|---|---|---|")
    by_lib = defaultdict(list)
    for r in recs:
        by_lib[r["library"]].append(r)
    pk = env.get("packages") or {}
    for lib, rs in by_lib.items():
        ver = pk.get(lib) or ("-" if not lib.startswith("repo:") else rs[0].get("repo_commit", "-"))
        w(f"| {lib} | {ver} | {len(rs)} | {sum(r.get('worked') == 'first' for r in rs)} | "
          f"{sum(bool(r.get('worked')) for r in rs)} | {sum(r in verified for r in rs)} |")

    # -- per model ---------------------------------------------------------------------------------
    w("\n## Every entry\n")
    w("Findings: code(severity E/W/i), of the try that worked. Verdicts: static estimate / measured batch, "
      "attenuation in brackets. Time: seconds of the first try (process start, imports, analysis).\n")
    w("| id | style | first try | first | second try | second | layers | static | measured | findings | s |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in recs:
        t = _worked(r)
        s = (t or {}).get("summary") or {}
        v = ((r.get("verify") or {}).get("summary") or {})
        static = f"{s.get('verdict') or '-'}" + (f" ({s['estimated_attenuation']:.1e})"
                                                 if s.get("estimated_attenuation") is not None else "")
        measured = f"{v.get('measured_verdict') or '-'}" + (f" ({v['measured_attenuation']:.1e})"
                                                            if v.get("measured_attenuation") is not None else "")
        w(f"| {r['id']} | {r['style']} | `{_cell(r.get('first_command'))}` | {_try_cell(r['first'])} | "
          f"{'`' + _cell(r['second_command']) + '`' if r.get('second_command') else '-'} | {_try_cell(r.get('second'))} | "
          f"{t.get('layers') if t else '-'} | {static} | {measured} | {_cell(_codes(t))} | {r['first']['seconds']:.0f} |")

    # -- messages ----------------------------------------------------------------------------------
    w("\n## Failure messages\n")
    w("What the user saw for each try that analyzed nothing (one line each).\n")
    for r in recs:
        for key in ("first", "second"):
            t = r.get(key)
            if t and t["outcome"] != "analyzed":
                w(f"- `{r['id']}` {key}: {t['outcome']} [{t.get('stage')}] {_cell(t.get('message', ''))}")
    if skipped:
        w("\n## Skipped\n")
        for r in skipped:
            w(f"- `{r['id']}`: {r['skipped']}")
    return "\n".join(out) + "\n"
