"""Counters are named as counters, gauges are not, and the dashboard and the alerts take
rate() or increase() of counters only (a gauge that counts, read with increase(), misreads
every restart); every alert links its runbook, a section of docs/monitoring.md."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import REPO

from .sources import (
    dashboard_expressions,
    exported_sample_types,
    promql_metric_names,
    recorded_names,
    rules,
)

# Functions whose range argument must be a counter (or a histogram's series).
COUNTER_FUNCTIONS = re.compile(r"\b(rate|irate|increase|resets)\s*\(")
COUNTER_TYPES = {"counter", "histogram", "summary"}
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")
MONITORING_DOC = REPO / "docs" / "monitoring.md"


@pytest.fixture(scope="module")
def types() -> dict[str, str]:
    return exported_sample_types()


def counter_arguments(expression: str) -> list[str]:
    """The argument text of every rate(), irate(), increase() and resets() call."""
    found = []
    for match in COUNTER_FUNCTIONS.finditer(expression):
        depth, start = 1, match.end()
        for index in range(start, len(expression)):
            depth += {"(": 1, ")": -1}.get(expression[index], 0)
            if depth == 0:
                found.append(expression[start:index])
                break
        else:
            raise AssertionError(f"unbalanced parentheses in {expression}")
    return found


def counted_metrics(expression: str) -> set[str]:
    return {name for argument in counter_arguments(expression)
            for name in promql_metric_names(argument)}


@pytest.mark.parametrize(("expression", "names"), [
    ("sum by (kind) (increase(edgewarden_cluster_cache_errors[5m]))",
     {"edgewarden_cluster_cache_errors"}),
    ("histogram_quantile(0.99, sum by (le) (rate(x_bucket{a=\"b\"}[5m]))) > 0.5 * scalar(y)",
     {"x_bucket"}),
    ("max(edgewarden_policies_loaded) - time()", set()),
])
def test_counted_metrics_are_read_from_promql(expression: str, names: set[str]) -> None:
    assert counted_metrics(expression) == names


def test_counters_end_in_total_and_gauges_do_not_look_like_counters(
    types: dict[str, str],
) -> None:
    edgewarden = {name: kind for name, kind in types.items() if name.startswith("edgewarden_")}
    assert edgewarden
    counters = [name for name, kind in edgewarden.items() if kind == "counter"]
    assert "edgewarden_requests_total" in counters
    for name in counters:
        assert name.endswith(("_total", "_created")), name
    for name, kind in edgewarden.items():
        # The text format shows a counter's or histogram's creation time as a gauge of its
        # own, <name>_created, beside <name>_total or <name>_count.
        base = name[:-len("_created")]
        if kind == "gauge" and not (name.endswith("_created") and (
                types.get(f"{base}_total") == "counter"
                or types.get(f"{base}_count") == "histogram")):
            assert not name.endswith(COUNTER_SUFFIXES), f"gauge {name} is named like a counter"
    # What only ever grows is a counter, whatever collector exports it.
    for name in ("edgewarden_cluster_cache_relists_total", "edgewarden_cluster_cache_errors_total",
                 "edgewarden_cluster_cache_stalls_total",
                 "edgewarden_connection_limit_hits_total",
                 "edgewarden_background_restarts_total"):
        assert types.get(name) == "counter", name


def test_the_dashboard_takes_rates_of_counters_only(types: dict[str, str]) -> None:
    expressions = dashboard_expressions()
    counted = [(title, expression) for title, expression in expressions
               if counted_metrics(expression)]
    assert counted, "the dashboard graphs rates"
    for title, expression in counted:
        for name in counted_metrics(expression):
            assert types.get(name) in COUNTER_TYPES, (
                f"panel {title!r} takes a rate of {name} ({types.get(name) or 'not exported'})")


def test_the_alerts_take_rates_of_counters_only(types: dict[str, str]) -> None:
    recorded = recorded_names()
    counted = [rule for rule in rules() if counted_metrics(rule["expr"])]
    assert counted
    for rule in counted:
        for name in counted_metrics(rule["expr"]):
            assert name not in recorded and types.get(name) in COUNTER_TYPES, (
                f"{rule.get('alert') or rule.get('record')} takes a rate of {name}")


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of a Markdown page."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_every_alert_links_its_own_section_of_the_monitoring_page() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert alerts
    existing = anchors(MONITORING_DOC.read_text())
    bases = set()
    for rule in alerts:
        url = rule["annotations"].get("runbook_url", "")
        base, _, anchor = url.partition("#")
        assert base.startswith("https://") and base.endswith("/docs/monitoring.md"), url
        assert anchor == rule["alert"].lower(), f"{rule['alert']} links {url}"
        assert anchor in existing, f"docs/monitoring.md has no section #{anchor}"
        bases.add(base)
    assert len(bases) == 1, "one base, so that prometheusRule.runbookBaseUrl moves them all"


def test_the_overload_alert_reads_the_429_counter() -> None:
    [rule] = [r for r in rules() if r.get("alert") == "EdgewardenRequestsRefusedForOverload"]
    assert 'edgewarden_connection_limit_hits_total{limit="concurrent_requests"}' in rule["expr"]
    assert any(r.get("alert") == "EdgewardenBackgroundTaskRestarting" for r in rules())
