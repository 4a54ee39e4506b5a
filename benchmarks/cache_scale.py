"""The watch cache at scale, side by side: seconds to ready and RSS of ``edgewarden serve``
builds started in turn against one populated API server (issue 21's "100k Services" row).

benchmarks/apiserver.py measures one build once, after populating for minutes; comparing two
builds (before and after a change) that way costs two populations and two machines' worth of
drift. Here one control plane is populated once (Namespaces and headless Services, as
benchmarks/apiserver.py makes them), then each ``--serve`` build is started in alternating
rounds: start to ready (``/readyz`` 200, every cache synced, Python's start included), the
per-kind "cache synced" times from its log, and its RSS once synced.

Run from the repository root after scripts/kube-binaries::

    .venv/bin/python benchmarks/cache_scale.py --serve after=.venv/bin/edgewarden \\
        --serve before=/path/to/other/checkout/.venv/bin/edgewarden --rounds 2
    .venv/bin/python benchmarks/cache_scale.py --namespaces 200 --services 2000 ...  # quick
    # populate once and keep the API server for later runs (prints its kubeconfig):
    .venv/bin/python benchmarks/cache_scale.py --hold 3600
    .venv/bin/python benchmarks/cache_scale.py --kubeconfig /tmp/.../kubeconfig --serve ...

Figures only; timings on a shared machine are noisy (rounds alternate so drift hits every
build alike). Results: a table on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from apiserver import NO_AUDIT, RESULTS, Server, populate  # noqa: E402  (puts tests/ on the path too)
from kube.binaries import locate  # noqa: E402
from kube.controlplane import ControlPlane  # noqa: E402


@dataclass
class Plane:
    """What ``apiserver.Server`` reads of a control plane: where its kubeconfig is."""

    kubeconfig: Path


@dataclass
class Run:
    build: str
    ready_seconds: float
    rss_mib: float
    # CPU seconds (user + system) the server used from its start to ready: steadier than
    # the wall time on a shared machine, where a busy neighbour stretches every wait.
    cpu_seconds: float
    synced_after_seconds: dict[str, float] = field(default_factory=dict)


def measure(plane: Any, builds: list[tuple[str, str]], rounds: int,
            workdir: Path) -> list[Run]:
    runs: list[Run] = []
    for round_number in range(rounds):
        for name, executable in builds:
            # Passed, not set as apiserver.EDGEWARDEN: Server's default was bound when its
            # module loaded, so every build ran the .venv's edgewarden (until 2026-12-06).
            server = Server(plane, workdir / f"{name}-{round_number}", executable)
            try:
                ready = server.start()
                cpu = server.cpu_seconds()
                # Ready is synced; let the last LIST's garbage go before reading the RSS.
                time.sleep(2)
                run = Run(name, round(ready, 2), server.rss_mib(), cpu, server.sync_times())
            finally:
                server.process.stop()
            print(f"round {round_number + 1}/{rounds} {name}: ready {run.ready_seconds:.1f} s, "
                  f"CPU {run.cpu_seconds:.1f} s, RSS {run.rss_mib:.0f} MiB, "
                  f"synced {run.synced_after_seconds}", flush=True)
            runs.append(run)
    return runs


def report(runs: list[Run], population: dict[str, Any]) -> None:
    print(f"\n{population.get('namespaces')} Namespaces, {population.get('services')} Services; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for build in dict.fromkeys(r.build for r in runs):
        mine = [r for r in runs if r.build == build]
        ready = statistics.median(r.ready_seconds for r in mine)
        rss = statistics.median(r.rss_mib for r in mine)
        cpu = statistics.median(r.cpu_seconds for r in mine)
        services = [r.synced_after_seconds["Service"] for r in mine
                    if "Service" in r.synced_after_seconds]
        synced = f", Services synced {statistics.median(services):.1f} s" if services else ""
        print(f"  {build:<10} ready {ready:5.1f} s  CPU {cpu:5.1f} s  RSS {rss:4.0f} MiB{synced}  "
              f"(median of {len(mine)})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cache-scale-{datetime.now():%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"population": population,
                               "runs": [r.__dict__ for r in runs]}, indent=2))
    print(f"\n(JSON: {out.relative_to(HERE.parent)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="append", default=[], metavar="NAME=EXECUTABLE",
                        help="an edgewarden executable to measure (repeat to compare)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--namespaces", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=900.0,
                        help="seconds for creating the population")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--kubeconfig", type=Path,
                        help="an API server populated before: measure only")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="keep the populated API server this many seconds afterwards")
    args = parser.parse_args()
    builds = [tuple(spec.split("=", 1)) for spec in args.serve]
    if any(len(b) != 2 for b in builds):
        parser.error("--serve takes NAME=EXECUTABLE")
    workdir = Path(tempfile.mkdtemp(prefix="edgewarden-cache-scale-"))
    if args.kubeconfig is not None:
        population = json.loads((args.kubeconfig.parent / "population.json").read_text()) \
            if (args.kubeconfig.parent / "population.json").exists() else {}
        report(measure(Plane(args.kubeconfig), builds, args.rounds, workdir), population)
        return
    plane = ControlPlane(locate(), workdir / "kube", controller_manager=False,
                         audit_policy=NO_AUDIT)
    plane.start()
    try:
        print(f"population: up to {args.namespaces} Namespaces, {args.services} Services...",
              flush=True)
        namespaces, services, seconds = populate(plane, args.namespaces, args.services,
                                                 args.budget, args.workers)
        population = {"namespaces": namespaces, "services": services,
                      "seconds": round(seconds, 1)}
        (plane.kubeconfig.parent / "population.json").write_text(json.dumps(population))
        print(f"  made {namespaces} Namespaces and {services} Services in {seconds:.0f} s",
              flush=True)
        if builds:
            report(measure(plane, builds, args.rounds, workdir), population)
        if args.hold:
            print(f"holding the API server for {args.hold:.0f} s; KUBECONFIG={plane.kubeconfig}",
                  flush=True)
            time.sleep(args.hold)
    finally:
        plane.stop()


if __name__ == "__main__":
    main()
