"""Two or more builds of edgewarden under the same HTTPS load, in interleaved rounds.

The ratio to the raw-ASGI ceiling (benchmarks/all.py, benchmarks/server.py) moves by
several percent from one run to the next on a shared machine, more than one change to the
admission path is worth. Here each round starts every build's ``serve`` in turn, on the same
policies, cluster state and certificates, and loads it with the same client
(``wrk -t2 -c64``, server.py's harness): a slow minute hits each build alike. Each build is
a tree holding ``webhook/`` (a checkout, or a copy compiled by
benchmarks/compiled_engine.py), run with this environment's Python. Run from the
repository root::

    .venv/bin/python benchmarks/throughput_ab.py TREE_A TREE_B [--rounds 6] [--seconds 8]
        [--endpoint validate|mutate] [--ceiling]

Figures only: req/s and the server's CPU per request (steadier than req/s) for each round,
and their means per build; ``--ceiling`` adds the raw-ASGI app as one more contestant.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compiled_engine  # noqa: E402
import server as harness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--endpoint", choices=("validate", "mutate"), default="validate")
    parser.add_argument("--ceiling", action="store_true")
    args = parser.parse_args()
    for tree in args.trees:
        if not (tree / "webhook" / "cli").is_dir():
            raise SystemExit(f"{tree} holds no webhook/ package")
    with tempfile.TemporaryDirectory(prefix="edgewarden-ab-") as name:
        folder = Path(name)
        cert, key = harness.certificates(folder / "certs")
        raw, validate, mutate = harness.targets(cert, key, folder, False, False)
        base = validate if args.endpoint == "validate" else mutate
        contestants: list[tuple[str, Any]] = [("raw-asgi (ceiling)", raw)] if args.ceiling else []
        contestants += [(str(tree), replace(base, command=[
            compiled_engine.edgewarden_command(tree.resolve(), folder / f"edgewarden-{index}"),
            *base.command[1:]])) for index, tree in enumerate(args.trees)]
        figures: dict[str, list[tuple[float, float | None]]] = {}
        for round_number in range(1, args.rounds + 1):
            for label, target in contestants:
                process = harness.start(target, folder)
                try:
                    measured = harness.measured(
                        process, lambda target=target: harness.run_wrk(target, args.seconds))
                finally:
                    harness.stop(process)
                if measured.errors:
                    raise SystemExit(f"{label}: {measured.errors} errors under wrk")
                figures.setdefault(label, []).append(
                    (measured.requests_per_second, measured.cpu_us_per_request))
                cpu = measured.cpu_us_per_request
                print(f"round {round_number}: {label}: {measured.requests_per_second:,.0f} "
                      f"req/s, {cpu:.0f} µs CPU a request" if cpu is not None else
                      f"round {round_number}: {label}: {measured.requests_per_second:,.0f} "
                      "req/s", flush=True)
    print(f"\n/{args.endpoint}, {args.rounds} interleaved rounds of {args.seconds} s "
          "(wrk -t2 -c64):")
    for label, rows in figures.items():
        cpus = [cpu for _, cpu in rows if cpu is not None]
        cpu_text = f", CPU a request mean {statistics.fmean(cpus):.0f} µs" if cpus else ""
        print(f"  {label}: req/s mean {statistics.fmean(r for r, _ in rows):,.0f}{cpu_text}")


if __name__ == "__main__":
    main()
