"""What the admission path counts on every request, kept as plain numbers.

prometheus-client's ``Counter.inc`` and ``Histogram.observe`` take a lock per update and run
a few interpreted calls around it: three updates cost about 4 µs of a request. Here an
update is a dict lookup and an addition (compiled by mypyc, see setup.py), and
``metrics.py`` turns the numbers into the same families at scrape time: the same names,
labels, buckets and ``_created`` samples the prometheus-client objects exported.

Every update comes from the event loop's thread (the endpoints and their handlers), so no
update is lost without a lock; a scrape copies the numbers before it renders them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate

Clock = Callable[[], float]


class LabelledCounts:
    """A counter per tuple of label values, with when each was first counted (Unix time,
    a Prometheus counter's ``_created``)."""

    def __init__(self, bound: Iterable[tuple[str, ...]] = (), clock: Clock = time.time) -> None:
        self._clock = clock
        self.values: dict[tuple[str, ...], float] = {}
        self.created: dict[tuple[str, ...], float] = {}
        for labels in bound:  # exported from the start, at zero, as pre-bound children were
            self.values[labels] = 0.0
            self.created[labels] = clock()

    def inc(self, labels: tuple[str, ...]) -> None:
        values = self.values
        count = values.get(labels)
        if count is None:
            self.created[labels] = self._clock()
            count = 0.0
        values[labels] = count + 1.0

    def snapshot(self) -> list[tuple[tuple[str, ...], float, float]]:
        """(labels, value, created) of every counter, in the order each was first bound."""
        values = dict(self.values)
        return [(labels, value, self.created[labels]) for labels, value in values.items()]


class DurationHistogram:
    """A histogram per label value: a count per bucket (each observation in the first bucket
    whose upper bound is at least the value, as Prometheus buckets are ``le``), a sum, and
    when it was made."""

    def __init__(self, bounds: Sequence[float], labels: Iterable[str],
                 clock: Clock = time.time) -> None:
        self.bounds = (*sorted(bounds), float("inf"))
        self.counts: dict[str, list[float]] = {}
        self.sums: dict[str, float] = {}
        self.created: dict[str, float] = {}
        for label in labels:
            self.counts[label] = [0.0] * len(self.bounds)
            self.sums[label] = 0.0
            self.created[label] = clock()

    def observe(self, label: str, seconds: float) -> None:
        self.counts[label][bisect_left(self.bounds, seconds)] += 1.0
        self.sums[label] += seconds

    def snapshot(self) -> list[tuple[str, list[float], float, float]]:
        """(label, cumulative count per bound, sum, created) of every histogram."""
        return [(label, list(accumulate(counts)), self.sums[label], self.created[label])
                for label, counts in list(self.counts.items())]


class RequestTallies:
    """The three per-request metrics: requests by endpoint and result, the decision's time
    by endpoint, violations by policy and mode."""

    def __init__(self, results: dict[str, tuple[str, ...]], buckets: Sequence[float],
                 clock: Clock = time.time) -> None:
        self.requests = LabelledCounts(
            ((endpoint, result) for endpoint, names in results.items() for result in names),
            clock)
        self.decision_seconds = DurationHistogram(buckets, results, clock)
        # policies come and go with reloads: each (policy, mode) is bound on first use
        self.violations = LabelledCounts((), clock)

    def count_request(self, endpoint: str, result: str) -> None:
        self.requests.inc((endpoint, result))

    def observe_decision(self, endpoint: str, seconds: float) -> None:
        self.decision_seconds.observe(endpoint, seconds)

    def count_violation(self, policy: str, mode: str) -> None:
        self.violations.inc((policy, mode))
