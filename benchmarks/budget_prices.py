"""The evaluation budget's prices (webhook/policy/engine/budget.py), measured on this runtime.

Run from the repository root:

    .venv/bin/python benchmarks/budget_prices.py [--repeat 5]

Two parts, figures only (nothing here asserts; timings on a shared machine are noisy, so
the budget keeps a margin over them, docs/policies.md "Cost"):

1. Unit costs of the CEL runtime (webhook/policy/cel/runtime), each the slope between two
   list sizes (so the fixed cost of a call cancels out): one comprehension step of
   ``all``/``map``/``filter`` (per step, at n and 16n: equal slopes mean linear), one element
   of list concatenation, one element scanned by ``in``, one element of a list argument of
   a size-dependent extension function (``sets.contains``), a plain node, an extension call.
   Each expression runs on the admission object as it is: the runtime converts nothing.
2. For every shipped policy the budget guards, on Ingresses and Services of growing size:
   the wall time of judging it alone (Engine, no budget) against what the guard prices it
   at. The budget is sound while ``priced / measured`` stays above 1 (the margin).
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worst_case import big_ingress  # noqa: E402  (this folder: the same Ingress it sends)

from webhook.cluster.memory import MemoryCluster  # noqa: E402
from webhook.policy.cel.expression import EXTENSION_FUNCTIONS  # noqa: E402
from webhook.policy.cel.runtime import compile_program  # noqa: E402
from webhook.policy.cel.syntax import parse, walk  # noqa: E402
from webhook.policy.engine.compiled import CompiledPolicies  # noqa: E402
from webhook.policy.engine.evaluation import Engine  # noqa: E402
from webhook.policy.load.loader import load_policies  # noqa: E402
from webhook.policy.model.policy import PolicySet  # noqa: E402
from webhook.policy.model.request import make_request  # noqa: E402

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "payments", "labels": {"environment": "production"}}}


def _best(run: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in µs (the least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times) * 1e6


def _program(source: str) -> Callable[[dict[str, Any]], Any]:
    return compile_program(parse(source), source, EXTENSION_FUNCTIONS).execute


def _slope(source: str, build: Callable[[int], dict[str, Any]], small: int, large: int,
           repeat: int) -> float:
    """µs per element between ``small`` and ``large`` elements."""
    program = _program(source)
    low, high = build(small), build(large)
    return (_best(lambda: program(high), repeat) - _best(lambda: program(low), repeat)) / (
        large - small)


def _items(n: int) -> dict[str, Any]:
    return {"object": {"items": [{"name": f"n{i}", "port": i} for i in range(n)],
                       "strings": [f"s{i}" for i in range(n)]}}


UNITS: list[tuple[str, str]] = [
    ("all: one step, body a literal", "object.items.all(x, true)"),
    ("all: one step, body a select and compare", "object.items.all(x, x.port >= 0)"),
    ("map: one step, body a select", "object.items.map(x, x.name).size() > 0"),
    ("filter: one step, body a select and compare",
     "object.items.filter(x, x.port >= 0).size() > 0"),
    ("list concatenation: one element", "(object.strings + object.strings).size() > 0"),
    ("`in` a list: one element scanned", "'absent' in object.strings"),
    ("sets.contains: n elements in each of two arguments (halve it per element)",
     "sets.contains(object.strings, object.strings)"),
    ("join: one element of its argument", "object.strings.join(',').size() > 0"),
]


def units(repeat: int) -> None:
    print("unit costs (µs per element; slope between 1,000 and 16,000, then 16,000 and "
          "64,000 elements: equal means linear)")
    for name, source in UNITS:
        first = _slope(source, _items, 1000, 16000, repeat)
        second = _slope(source, _items, 16000, 64000, repeat)
        print(f"  {name:72} {first:7.3f} {second:7.3f}")
    # A node: a chain of 200 comparisons joined by &&, per node of its tree (literals
    # included, as the budget counts them).
    chain = " && ".join(f"object.items[{i % 10}].port >= 0" for i in range(200))
    program, values = _program(chain), _items(10)
    nodes = sum(1 for _ in walk(parse(chain)))
    node = _best(lambda: program(values), repeat * 20) / nodes
    print(f"  {'a plain node (select, index, compare, &&)':72} {node:7.3f}")
    # A literal: its closure returns a constant (called a million times, per call).
    constant = compile_program(parse("'a'"), "'a'", EXTENSION_FUNCTIONS).closure
    empty: dict[str, Any] = {}
    literal = _best(lambda: [constant(empty) for _ in range(1_000_000)], repeat) / 1_000_000
    print(f"  {'a literal':72} {literal:7.3f}")
    # An extension call: 200 calls of a one-element sets.contains, less their other nodes.
    calls = " && ".join("sets.contains(object.strings, ['s0'])" for _ in range(200))
    program, values = _program(calls), _items(1)
    others = sum(1 for _ in walk(parse(calls))) - 200
    call = (_best(lambda: program(values), repeat * 20) - others * node) / 200
    print(f"  {'an extension call (less its other nodes)':72} {call:7.3f}")



def _service(ips: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ips", "namespace": "payments"},
            "spec": {"ports": [{"port": 80}],
                     "externalIPs": [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
                                     for i in range(ips)]}}


def policies(repeat: int) -> None:
    print("\nshipped policies: judged alone with no budget (µs, best of runs) against the "
          "guard's price")
    print(f"  {'policy':38} {'input':28} {'measured':>10} {'priced':>10} {'ratio':>6}")
    shipped = load_policies(ROOT / "policies")
    compiled = CompiledPolicies.compile(shipped)
    guarded = sorted(set(compiled.guards) | set(compiled.condition_guards))
    cluster = MemoryCluster([copy.deepcopy(NAMESPACE)])
    inputs: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
        (f"Ingress {n:,} rules {'TLS' if covered else 'no TLS'}", big_ingress(n, covered), None)
        for n in (400, 2000, 8000) for covered in (True, False)
    ] + [(f"Service UPDATE {n:,} externalIPs", _service(n), _service(n))
         for n in (1000, 10000)]
    ratios = []
    totals: dict[str, float] = {}
    for name in guarded:
        policy = shipped.get(name)
        assert policy is not None
        engine = Engine(PolicySet((policy,)), budget=float("inf"))
        kinds = policy.match.kinds if policy.match is not None else ()
        for label, obj, old in inputs:
            if kinds and obj["kind"] not in kinds:
                continue
            request = make_request("UPDATE" if old is not None else "CREATE", obj, old)
            values = {"object": obj, "oldObject": old, "request": {},
                      "namespaceObject": cluster.get_namespace("payments")}
            priced = sum(guard.cost(values) for guard in (
                compiled.guards.get(name), compiled.condition_guards.get(name))
                if guard is not None)
            measured = _best(functools.partial(engine.evaluate, request, cluster), repeat)
            ratio = priced / measured if measured else float("inf")
            ratios.append(ratio)
            if name not in ("ingress-hosts-owned-by-namespace",):
                totals[label] = totals.get(label, 0.0) + priced
            print(f"  {name:38} {label:28} {measured:10,.0f} {priced:10,.0f} {ratio:6.1f}")
    if ratios:
        print(f"  smallest ratio {min(ratios):.1f}, median {statistics.median(ratios):.1f}")
    # ingress-hosts-owned-by-namespace is left out: its matchConditions (costed first, on
    # their own) leave out a namespace that grants no hostnames, as this one.
    print("\nwhat the shipped set is priced at in one admission (one shared budget, µs)")
    for label, total in totals.items():
        print(f"  {label:32} {total:10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("units", "policies"), default=None)
    arguments = parser.parse_args()
    if arguments.only != "policies":
        units(arguments.repeat)
    if arguments.only != "units":
        policies(arguments.repeat)


if __name__ == "__main__":
    main()
