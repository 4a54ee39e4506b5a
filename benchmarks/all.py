"""Every figure of issue 21's target table, in one run, beside its target.

Run from the repository root (needs ``wrk``, and the Go tools built by scripts/kube-binaries)::

    .venv/bin/python benchmarks/all.py            # the full run, ~12 minutes on 2 cores
    .venv/bin/python benchmarks/all.py --quick    # tiny sizes: checks that every step runs

Steps 2-4 measure the build the image ships: a copy of the tree, in the run's temporary
folder, with setup.py's modules compiled by mypyc (benchmarks/compiled_engine.py makes it;
about a minute). Without a C compiler, and in ``--quick``, they measure the working tree
(pure Python), and the rows say which. The engine's pure-Python figures are noted beside.

The steps, in order (each its own measurement; a step that fails leaves its rows marked
"failed" and the others still run, and the exit status is then 1):

1. ``map`` over an Ingress's rules: ``object.spec.rules.map(r, r.host)`` compiled by the
   product's CEL layer and evaluated on an Ingress of 1,600 rules, the object's conversion
   included (the binding converts a plain dict on every evaluation), median of repeats.
2. The engine: benchmarks/engine.py (the shipped policies on realistic reviews, Services and
   Ingresses apart, and 100 policies), pinned to one core as it pins itself.
3. Throughput: the raw ASGI ceiling (benchmarks/raw_asgi.py) and ``edgewarden serve``'s
   /validate and /mutate, each its own uvicorn process over TLS with one worker, under the
   same client (``wrk -t2 -c64``, benchmarks/server.py's harness) in this run. The ceiling
   is measured before and after edgewarden and averaged, so load from elsewhere on the
   machine that drifts during the run weighs on both alike.
4. Through a real kube-apiserver: benchmarks/apiserver.py without its part 3: Service
   CREATE p50/p99 judged and not judged by the webhook, and judged by a webhook that does
   nothing (the ceiling's app, registered the same way; one create of each in turn), then 10,000
   Namespaces and 100,000 Services created through the API server within a time budget,
   and ``edgewarden serve`` started against them: seconds to ready and RSS once synced.
   Populating is most of the run's time; if the budget runs out first, the row says how
   many Services there were.

The engine's targets are microseconds on the machine the issue was filed on; a machine may
run at half that speed another day. ``--before CHECKOUT`` runs step 2 on the build the issue
measured too (its own engine.py, in this run), and has it judge a series of step 4's creates
too, and notes the ratios and what they make of the issue's figures::

    git worktree add ../before 5417452     # the 14 policies and the code the issue measured
    python3.11 -m venv ../before/.venv && ../before/.venv/bin/pip install \
        -c ../before/constraints.txt -e ../before
    .venv/bin/python benchmarks/all.py --before ../before

Figures only: nothing here asserts. Results: the table on stdout (each step's own output on
stderr) and JSON in benchmarks/results/all-<date>.json (or ``--json``). Timings on a shared
machine are noisy; the JSON records the load average before and after each step.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
RESULTS = HERE / "results"
PYTHON = sys.executable

# Row keys, in the order of the issue's table, with its "now" and "target" columns.
THROUGHPUT = "throughput vs raw ASGI ceiling"
ENGINE_DEFAULT = "engine, shipped policies, Service / Ingress median"
ENGINE_HUNDRED = "engine, 100 policies, median"
CREATE_ADDED = "added to a CREATE through kube-apiserver, p50 / p99"
SCALE = "100k Services: ready / RSS"
MAP = "`map` over 1,600 rules"
ISSUE_TABLE: dict[str, tuple[str, str]] = {
    THROUGHPUT: ("36%", "≥ 60%"),
    ENGINE_DEFAULT: ("47 / 153 µs", "≤ 15 / ≤ 40 µs"),
    ENGINE_HUNDRED: ("249 µs", "≤ 80 µs"),
    CREATE_ADDED: ("3.1 / 4.0 ms", "≤ 1.5 / ≤ 3 ms"),
    SCALE: ("16.2 s / 418 MiB", "≤ 5 s / ≤ 200 MiB"),
    MAP: ("196 ms", "≤ 2 ms"),
}
ROWS = tuple(ISSUE_TABLE)
MAP_EXPRESSION = "object.spec.rules.map(r, r.host)"


@dataclass(frozen=True)
class Sizes:
    """How much each step does: the full run, or ``--quick``'s smoke-test sizes."""

    map_rules: int = 1600
    map_repeats: int = 7
    engine_reviews: int = 20000
    wrk_seconds: int = 10
    creates: int = 600
    namespaces: int = 10_000
    services: int = 100_000
    population_budget: float = 480.0
    population_workers: int = 8


QUICK = Sizes(map_rules=200, map_repeats=2, engine_reviews=300, wrk_seconds=1, creates=10,
              namespaces=5, services=40, population_budget=120.0,
              population_workers=4)


@dataclass
class Row:
    figure: str
    measured: str = "not measured"
    now: str = ""
    target: str = ""
    values: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()
    error: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class StepFailed(Exception):
    """A step could not measure; the message is one line for the table."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_logged(command: list[str], timeout: float) -> str:
    """Run a benchmark script, its output streamed to stderr as it comes; return it."""
    log(f"$ {' '.join(Path(c).name if c == PYTHON else c for c in command)}")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    # A script that hangs without a word is killed all the same.
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.append(line)
            sys.stderr.write("    " + line)
        code = process.wait()
    finally:
        killer.cancel()
    output = "".join(lines)
    if code != 0:
        last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
        raise StepFailed(f"{Path(command[1]).name} exited {code}: {last[:200]}")
    return output


# --- 1. map --------------------------------------------------------------------------


def ingress_with_rules(count: int) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "many-rules", "namespace": "shop"},
            "spec": {"ingressClassName": "nginx", "rules": [
                {"host": f"h{i}.shop.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {
                        "service": {"name": "web", "port": {"number": 80}}}}]}}
                for i in range(count)]}}


def measure_map(sizes: Sizes, rows: dict[str, Row], step: Step) -> None:
    sys.path.insert(0, str(ROOT))
    from webhook.policy.cel.expression import compile_expression

    expression = compile_expression(MAP_EXPRESSION)
    context = {"object": ingress_with_rules(sizes.map_rules)}
    hosts = expression.evaluate(context)  # the first run also checks the answer
    if len(hosts) != sizes.map_rules:
        raise StepFailed(f"map returned {len(hosts)} hosts for {sizes.map_rules} rules")
    samples = []
    for _ in range(sizes.map_repeats):
        started = time.perf_counter()
        expression.evaluate(context)
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    step.raw = {"expression": MAP_EXPRESSION, "rules": sizes.map_rules, "samples_ms": samples}
    rows[MAP].measured = f"{median:.2f} ms"
    rows[MAP].values = {"median_ms": median, "rules": sizes.map_rules}
    if sizes.map_rules != 1600:
        rows[MAP].note = f"{sizes.map_rules} rules"


# --- the build measured ---------------------------------------------------------------


@dataclass
class Build:
    """The tree steps 2-4 run: the working tree, or a copy with setup.py's modules compiled
    by mypyc, as the image ships them (``edgewarden`` runs that copy's CLI)."""

    tree: Path
    edgewarden: str
    description: str
    compiled: bool = False


def build_measured(sizes: Sizes, tmp: Path) -> Build:
    pure = Build(ROOT, str(Path(PYTHON).with_name("edgewarden")), "pure Python (the working tree)")
    if sizes == QUICK:
        return pure  # a smoke run: compiling would be most of it
    compiled_engine = load_module("bench_compiled_engine", HERE / "compiled_engine.py")
    folder = tmp / "shipped"
    log("compiling setup.py's modules with mypyc, as the image ships them...")
    try:
        seconds = compiled_engine.compiled_copy(folder, compiled_engine.shipped_modules())
    except SystemExit as error:  # no compiler, or mypyc refused: measure the working tree
        log(f"could not compile ({str(error).splitlines()[0]}): measuring pure Python")
        pure.description += " (the compiled build could not be made)"
        return pure
    log(f"compiled in {seconds:.0f} s")
    wrapper = compiled_engine.edgewarden_command(folder, tmp / "edgewarden-shipped")
    return Build(folder, wrapper, "the shipped build (setup.py's modules compiled by "
                 "mypyc)", compiled=True)


# --- 2. engine -----------------------------------------------------------------------


def engine_figures(tree: Path, sizes: Sizes, out: Path,
                   python: str = PYTHON) -> dict[str, dict[str, float]]:
    run_logged([python, str(tree / "benchmarks" / "engine.py"), "--reviews",
                str(sizes.engine_reviews), "--json", str(out)], timeout=900)
    figures: dict[str, dict[str, float]] = json.loads(out.read_text())
    return figures


def measure_engine(sizes: Sizes, rows: dict[str, Row], step: Step, tmp: Path,
                   build: Build, before: Path | None = None) -> None:
    results = engine_figures(build.tree, sizes, tmp / "engine.json")
    pure = engine_figures(ROOT, sizes, tmp / "engine-pure.json") if build.compiled else None
    # The build the issue measured, its own engine.py in its own environment, in this run:
    # how much faster this build is on this machine, today.
    earlier = None if before is None else engine_figures(
        before, sizes, tmp / "engine-before.json",
        python=str(before / ".venv" / "bin" / "python"))
    step.raw = results if pure is None and earlier is None else \
        {"measured": results, "pure": pure, "before": earlier}

    def find(pattern: str) -> tuple[str, dict[str, float]]:
        return _engine_row(results, pattern, "benchmarks/engine.py")

    default_name, _ = find(r"^default set")
    _, services = find(r"^services")
    _, ingresses = find(r"^ingresses")
    _, hundred = find(r"^100 policies")
    policies = re.search(r"(\d+) policies", default_name)
    row = rows[ENGINE_DEFAULT]
    row.measured = f"{services['median_us']:.1f} / {ingresses['median_us']:.1f} µs"
    row.values = {"service_median_us": services["median_us"],
                  "ingress_median_us": ingresses["median_us"]}
    if policies:
        row.note = f"{policies.group(1)} policies"
        row.values["policies"] = float(policies.group(1))
    rows[ENGINE_HUNDRED].measured = f"{hundred['median_us']:.1f} µs"
    rows[ENGINE_HUNDRED].values = {"median_us": hundred["median_us"]}
    if pure is not None:
        _, services_pure = _engine_row(pure, r"^services", "benchmarks/engine.py")
        _, ingresses_pure = _engine_row(pure, r"^ingresses", "benchmarks/engine.py")
        _, hundred_pure = _engine_row(pure, r"^100 policies", "benchmarks/engine.py")
        row.note = (f"{row.note + '; ' if row.note else ''}{build.description}; pure "
                    f"Python {services_pure['median_us']:.1f} / "
                    f"{ingresses_pure['median_us']:.1f} µs")
        row.values["pure_service_median_us"] = services_pure["median_us"]
        row.values["pure_ingress_median_us"] = ingresses_pure["median_us"]
        rows[ENGINE_HUNDRED].note = (f"{build.description}; pure Python "
                                     f"{hundred_pure['median_us']:.1f} µs")
        rows[ENGINE_HUNDRED].values["pure_median_us"] = hundred_pure["median_us"]
    if before is not None and earlier is not None:
        _note_before(rows, earlier, services["median_us"], ingresses["median_us"],
                     hundred["median_us"], before)


def _engine_row(figures: dict[str, dict[str, float]], pattern: str,
                source: str) -> tuple[str, dict[str, float]]:
    """The row of engine.py's figures whose name matches ``pattern``, and its name."""
    for name, row in figures.items():
        if re.search(pattern, name.strip(), re.I):
            return name.strip(), row
    raise StepFailed(f"{source} reported no {pattern!r} row")


def _note_before(rows: dict[str, Row], earlier: dict[str, dict[str, float]],
                 service: float, ingress: float, hundred: float, before: Path) -> None:
    """The before build's medians beside this build's, and what the ratio makes of the
    issue's own figures (measured on another day's machine)."""
    source = f"{before}/benchmarks/engine.py"
    then = {name: _engine_row(earlier, f"^{name}", source)[1]["median_us"]
            for name in ("Services", "Ingresses", "100 policies")}
    issue = {"Services": 47.0, "Ingresses": 153.0, "100 policies": 249.0}
    now = {"Services": service, "Ingresses": ingress, "100 policies": hundred}
    scaled = {k: issue[k] * now[k] / then[k] for k in now}
    row = rows[ENGINE_DEFAULT]
    row.note = (f"{row.note}; the issue's build ({before.name}) in this run "
                f"{then['Services']:.1f} / {then['Ingresses']:.1f} µs, so "
                f"{then['Services'] / service:.1f}x / {then['Ingresses'] / ingress:.1f}x "
                f"faster: on the issue's machine {scaled['Services']:.1f} / "
                f"{scaled['Ingresses']:.1f} µs")
    rows[ENGINE_HUNDRED].note = (
        f"{rows[ENGINE_HUNDRED].note}; the issue's build in this run "
        f"{then['100 policies']:.1f} µs ({then['100 policies'] / hundred:.1f}x): on the "
        f"issue's machine {scaled['100 policies']:.1f} µs")
    row.values.update({"before_service_median_us": then["Services"],
                       "before_ingress_median_us": then["Ingresses"],
                       "scaled_service_median_us": scaled["Services"],
                       "scaled_ingress_median_us": scaled["Ingresses"]})
    rows[ENGINE_HUNDRED].values.update({"before_median_us": then["100 policies"],
                                        "scaled_median_us": scaled["100 policies"]})


# --- 3. throughput -------------------------------------------------------------------


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StepFailed(f"cannot load {path.relative_to(ROOT)}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def measure_throughput(sizes: Sizes, rows: dict[str, Row], step: Step, tmp: Path,
                       build: Build) -> None:
    if shutil.which("wrk") is None:
        raise StepFailed("wrk is not installed (Debian package wrk)")
    harness = load_module("bench_server", HERE / "server.py")
    cert, key = harness.certificates(tmp / "certs")
    raw, validate, mutate = harness.targets(cert, key, tmp, False, False)
    # edgewarden's targets run the build measured (their command starts with the executable)
    validate, mutate = (replace(t, command=[build.edgewarden, *t.command[1:]])
                        for t in (validate, mutate))
    measurements: list[dict[str, Any]] = []

    def measure(target: Any) -> float:
        process = harness.start(target, tmp)
        try:
            log(f"measuring {target.name} (wrk -t2 -c64, {sizes.wrk_seconds} s)...")
            figure = harness.measured(process, lambda: harness.run_wrk(target, sizes.wrk_seconds))
        finally:
            harness.stop(process)
        if figure.errors:
            raise StepFailed(f"{target.name}: {figure.errors} errors under wrk")
        measurements.append(asdict(figure))
        return float(figure.requests_per_second)

    # The ceiling before and after: the mean of both is the ratio's denominator.
    ceiling_before = measure(raw)
    validate_rps = measure(validate)
    mutate_rps = measure(mutate)
    ceiling_after = measure(raw)
    ceiling = (ceiling_before + ceiling_after) / 2
    step.raw = {"measurements": measurements, "ceiling_rps": ceiling}
    per_target: dict[str, list[float]] = {}
    for m in measurements:
        if isinstance(m["cpu_us_per_request"], float):
            per_target.setdefault(m["target"], []).append(m["cpu_us_per_request"])
    cpu = {name: statistics.fmean(values) for name, values in per_target.items()}
    row = rows[THROUGHPUT]
    row.measured = (f"{validate_rps / ceiling:.0%} (/validate {validate_rps:,.0f} of "
                    f"{ceiling:,.0f} req/s; /mutate {mutate_rps / ceiling:.0%})")
    row.values = {"validate_ratio": validate_rps / ceiling, "mutate_ratio": mutate_rps / ceiling,
                  "validate_rps": validate_rps, "mutate_rps": mutate_rps,
                  "ceiling_rps": ceiling, "ceiling_before_rps": ceiling_before,
                  "ceiling_after_rps": ceiling_after}
    # Server CPU per request hardly moves with load from elsewhere, unlike req/s.
    row.note = build.description
    if len(cpu) == 3:  # /proc read for each: the ceiling (both runs' mean) and ours
        row.note += ("; server CPU per request (steadier than req/s on a shared machine): "
                     + ", ".join(f"{name} {value:.0f} µs" for name, value in cpu.items()))
        row.values.update({f"cpu_us_per_request {name}": value for name, value in cpu.items()})


# --- 4. through a real kube-apiserver -------------------------------------------------


def measure_apiserver(sizes: Sizes, rows: dict[str, Row], step: Step, build: Build,
                      before: Path | None = None) -> None:
    # With the issue's build: it judges a series of its own in the same rotation.
    baseline = [] if before is None else [
        "--baseline", str(before / ".venv" / "bin" / "edgewarden")]
    output = run_logged([
        PYTHON, str(HERE / "apiserver.py"), "--skip-parts", "--edgewarden", build.edgewarden,
        "--creates", str(sizes.creates), *baseline,
        "--namespaces", str(sizes.namespaces),
        "--services", str(sizes.services), "--budget", str(sizes.population_budget),
        "--workers", str(sizes.population_workers)],
        timeout=sizes.population_budget + 900)
    found = re.search(r"\(JSON: (\S+)\)", output)
    if found is None:
        raise StepFailed("benchmarks/apiserver.py wrote no JSON")
    written = ROOT / found.group(1)
    figures: dict[str, Any] = json.loads(written.read_text())
    if sizes == QUICK:  # smoke sizes: this run's JSON holds them; keep results/ for figures
        written.unlink()
    step.raw = figures
    plain, judged = figures["without_webhook_ms"], figures["with_webhook_ms"]
    added_p50, added_p99 = judged["p50"] - plain["p50"], judged["p99"] - plain["p99"]
    row = rows[CREATE_ADDED]
    row.measured = f"{added_p50:.2f} / {added_p99:.2f} ms"
    row.values = {"added_p50_ms": added_p50, "added_p99_ms": added_p99,
                  "without_p50_ms": plain["p50"], "without_p99_ms": plain["p99"]}
    row.note = (f"{build.description}; {figures['creates']} creates per series, one of each "
                f"series in turn; "
                f"not judged p50 {plain['p50']:.1f} ms, p99 {plain['p99']:.1f} ms")
    idle = figures.get("with_idle_webhook_ms")
    if idle:
        # The same rotation's third series: what any webhook call costs this API server.
        idle_p50, idle_p99 = idle["p50"] - plain["p50"], idle["p99"] - plain["p99"]
        own_p50, own_p99 = judged["p50"] - idle["p50"], judged["p99"] - idle["p99"]
        row.values.update({"idle_added_p50_ms": idle_p50, "idle_added_p99_ms": idle_p99,
                           "own_p50_ms": own_p50, "own_p99_ms": own_p99})
        row.note += (f"; a webhook that does nothing (the raw ASGI ceiling under uvicorn, "
                     f"TLS, the same configurations) adds {idle_p50:.2f} / {idle_p99:.2f} ms "
                     f"in the same rotation, so edgewarden's own part is {own_p50:.2f} / "
                     f"{own_p99:.2f} ms")
    earlier = figures.get("with_baseline_ms")
    if before is not None and earlier:
        # What the issue's build adds on this API server today, and what the ratio makes
        # of this build's figures on the issue's day (3.1 / 4.0 ms then).
        then_p50, then_p99 = earlier["p50"] - plain["p50"], earlier["p99"] - plain["p99"]
        row.note += (f"; the issue's build ({before.name}) in this run adds {then_p50:.2f} / "
                     f"{then_p99:.2f} ms")
        row.values.update({"before_added_p50_ms": then_p50, "before_added_p99_ms": then_p99})
        if then_p50 > 0 and then_p99 > 0:
            scaled_p50, scaled_p99 = 3.1 * added_p50 / then_p50, 4.0 * added_p99 / then_p99
            row.note += f": on the issue's day {scaled_p50:.2f} / {scaled_p99:.2f} ms"
            row.values.update({"scaled_added_p50_ms": scaled_p50,
                               "scaled_added_p99_ms": scaled_p99})
    if not figures.get("services"):
        raise StepFailed("no Service was created for the scale figure")
    scale = rows[SCALE]
    scale.measured = (f"{figures['start_to_ready_seconds']:.1f} s / "
                      f"{figures['rss_mib_synced']:.0f} MiB")
    scale.values = {"ready_seconds": figures["start_to_ready_seconds"],
                    "rss_mib": figures["rss_mib_synced"],
                    "rss_mib_empty_cluster": figures["rss_mib_empty_cluster"],
                    "namespaces": figures["namespaces"], "services": figures["services"]}
    synced = figures.get("synced_after_seconds", {})
    service_sync = f"; Services synced {synced['Service']:.1f} s" if "Service" in synced else ""
    cpu = figures.get("cpu_seconds_to_ready")
    scale.note = (f"{figures['namespaces']:,} Namespaces, {figures['services']:,} Services "
                  f"(made in {figures['population_seconds']:.0f} s){service_sync}; "
                  + (f"server CPU to ready {cpu:.1f} s; " if cpu else "")
                  + f"RSS {figures['rss_mib_empty_cluster']:.0f} MiB on an empty cluster")
    if cpu:
        scale.values["cpu_seconds_to_ready"] = cpu


# --- the run -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_before": os.getloadavg()}


def run_step(name: str, steps: list[Step], affected: tuple[str, ...], rows: dict[str, Row],
             measure: Callable[[Step], None]) -> None:
    step = Step(name, load_before=os.getloadavg())
    steps.append(step)
    log(f"\n== {name} ==")
    started = time.monotonic()
    try:
        measure(step)
    except Exception as error:  # any failure of one step: the others still run
        step.error = (str(error).splitlines() or [type(error).__name__])[0][:300]
        for key in affected:
            if rows[key].measured == "not measured":
                rows[key].measured = "failed"
                rows[key].note = step.error
        log(f"{name} failed: {step.error}")
    step.seconds = round(time.monotonic() - started, 1)
    step.load_after = os.getloadavg()


def table(rows: dict[str, Row]) -> str:
    header = ("figure", "measured", "issue (before)", "target")
    body = [(r.figure, r.measured, r.now, r.target) for r in rows.values()]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    lines = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(cells) for cells in body]
    notes = [f"- {r.figure}: {r.note}" for r in rows.values() if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: a smoke run of every step (its figures mean little)")
    parser.add_argument("--json", type=Path, help="write the JSON here instead of "
                        "benchmarks/results/all-<date>.json")
    parser.add_argument("--skip-apiserver", action="store_true",
                        help="leave out step 4 (a real kube-apiserver; most of the run)")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also run step 2 on the build the issue measured: a checkout "
                             "of it with its own environment in CHECKOUT/.venv (see the "
                             "module's docstring)")
    args = parser.parse_args(argv)
    if args.before is not None and not (args.before / ".venv" / "bin" / "python").exists():
        parser.error(f"--before {args.before}: no environment at "
                     f"{args.before / '.venv' / 'bin' / 'python'}")
    sizes = QUICK if args.quick else Sizes()
    rows = {key: Row(key, now=now, target=target) for key, (now, target) in ISSUE_TABLE.items()}
    steps: list[Step] = []
    started = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="edgewarden-bench-all-") as folder:
        tmp = Path(folder)
        run_step("map", steps, (MAP,), rows, lambda s: measure_map(sizes, rows, s))
        build = build_measured(sizes, tmp)
        info["build"] = build.description
        run_step("engine", steps, (ENGINE_DEFAULT, ENGINE_HUNDRED), rows,
                 lambda s: measure_engine(sizes, rows, s, tmp, build, args.before))
        run_step("throughput", steps, (THROUGHPUT,), rows,
                 lambda s: measure_throughput(sizes, rows, s, tmp, build))
        if not args.skip_apiserver:
            run_step("apiserver", steps, (CREATE_ADDED, SCALE), rows,
                     lambda s: measure_apiserver(sizes, rows, s, build, args.before))
    info["load_after"] = os.getloadavg()
    total = time.monotonic() - started
    print(f"\nissue 21's figures ({'--quick: smoke sizes, not figures' if args.quick else 'full'}"
          f"; {info['cpus']} CPUs, load average {info['load_before'][0]:.1f} before, "
          f"{info['load_after'][0]:.1f} after; {total / 60:.1f} min)\n")
    print(table(rows))
    out = args.json or RESULTS / f"all-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "quick": args.quick, "sizes": asdict(sizes), "machine": info,
        "seconds": round(total, 1), "rows": [asdict(r) for r in rows.values()],
        "steps": [asdict(s) for s in steps]}, indent=2, ensure_ascii=False))
    print(f"\n(JSON: {out})")
    return 1 if any(s.error for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
