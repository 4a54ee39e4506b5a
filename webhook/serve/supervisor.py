"""One supervisor for every background task of ``serve``, in the spirit of controller-runtime's
Manager: nothing that runs beside the webhook dies quietly.

Each part is a coroutine meant to run until cancelled. When it raises (anything, including
``RecursionError`` and ``MemoryError``) or returns, the supervisor:

* logs it: the first failure of a streak at ERROR with its traceback, the rest of the streak
  as one line every tenth time, so a long outage neither floods the log nor goes unseen;
* counts it (``edgewarden_background_restarts_total{task}``, and
  ``edgewarden_background_task_up{task}`` drops to 0 until it runs again);
* restarts it after an exponential backoff with jitter (0.5 s doubling to 30 s), which starts
  over once the part has run ``healthy_after`` seconds without failing;
* reflects it in ``/readyz``: each part says after how long failing it makes the pod unready
  (``unready_after``; ``None`` for parts whose failure never makes answers wrong, such as
  writing reports). A part is failing from its first failure until it has run
  ``healthy_after`` seconds since its last restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from webhook.cluster.backoff import backoff_delay
from webhook.errors import one_line

log = logging.getLogger("edgewarden.supervisor")

LOG_EVERY = 10  # in a streak of failures, the first and then every tenth are logged


class Part(Protocol):
    """A background task (webhook.background.BackgroundWork): ``run`` is started again
    whenever it ends; ``unready_after`` is how long it may fail before /readyz says not
    ready (None: never)."""

    @property
    def name(self) -> str: ...

    @property
    def run(self) -> Callable[[], Awaitable[None]]: ...

    @property
    def unready_after(self) -> float | None: ...


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    # A part that has run this long since its last start counts as recovered.
    healthy_after: float = 10.0

    def delay(self, failures: int) -> float:
        return backoff_delay(failures, self.initial, self.maximum)


class RestartCounter(Protocol):
    """Where restarts are counted (webhook.admission.metrics.Metrics)."""

    def count_background_restart(self, task: str) -> None: ...

    def set_background_up(self, task: str, up: bool) -> None: ...


@dataclass
class PartState:
    restarts: int = 0
    failures_in_a_row: int = 0
    running: bool = False
    started_at: float | None = None  # monotonic, the latest start
    failing_since: float | None = None  # monotonic, the first failure of the streak
    last_error: str | None = None


@dataclass
class Supervisor:
    parts: Sequence[Part]
    counter: RestartCounter | None = None
    backoff: Backoff = field(default_factory=Backoff)
    monotonic: Callable[[], float] = time.monotonic
    states: dict[str, PartState] = field(init=False)

    def __post_init__(self) -> None:
        names = [part.name for part in self.parts]
        if len(set(names)) != len(names):
            raise ValueError(f"background task names must be unique: {names}")
        self.states = {part.name: PartState() for part in self.parts}

    async def run(self) -> None:
        """Run every part until cancelled; then cancel them all and wait for them."""
        tasks = [asyncio.create_task(self._keep_running(part), name=f"supervised:{part.name}")
                 for part in self.parts]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _keep_running(self, part: Part) -> None:
        state = self.states[part.name]
        while True:
            state.running = True
            state.started_at = self.monotonic()
            self._set_up(part.name, True)
            try:
                await part.run()
                reason = "it returned (it should run until stopped)"
                error: BaseException | None = None
            except asyncio.CancelledError:
                state.running = False
                raise
            except Exception as failure:  # RecursionError and MemoryError are Exceptions too
                reason, error = one_line(failure), failure
            delay = self._failed(part, state, reason, error)
            await asyncio.sleep(delay)

    def _failed(self, part: Part, state: PartState, reason: str,
                error: BaseException | None) -> float:
        now = self.monotonic()
        if state.started_at is not None and now - state.started_at >= self.backoff.healthy_after:
            state.failures_in_a_row = 0  # it had recovered: a new incident
            state.failing_since = None
        state.running = False
        state.restarts += 1
        state.failures_in_a_row += 1
        state.last_error = reason
        if state.failing_since is None:
            state.failing_since = now
        self._set_up(part.name, False)
        if self.counter is not None:
            self.counter.count_background_restart(part.name)
        delay = self.backoff.delay(state.failures_in_a_row)
        streak = state.failures_in_a_row
        if streak == 1:
            log.error("background task %s failed: %s; restarting in %.1f s", part.name,
                      reason, delay, exc_info=error)
        elif streak % LOG_EVERY == 0:
            log.warning("background task %s failed %d times in a row (last: %s); restarting "
                        "in %.1f s", part.name, streak, reason, delay)
        else:
            log.debug("background task %s failed again: %s", part.name, reason)
        return delay

    def _set_up(self, name: str, up: bool) -> None:
        if self.counter is not None:
            self.counter.set_background_up(name, up)

    # ---- readiness ----

    def _failing_for(self, state: PartState, now: float) -> float | None:
        """Seconds the part has been failing, or None when it is healthy."""
        if state.failing_since is None:
            return None
        if (state.running and state.started_at is not None
                and now - state.started_at >= self.backoff.healthy_after):
            state.failing_since = None  # ran long enough since the last restart: recovered
            state.failures_in_a_row = 0
            return None
        return now - state.failing_since

    def not_ready(self) -> str | None:
        """A reason when a part whose failure matters has failed for too long."""
        now = self.monotonic()
        reasons = []
        for part in self.parts:
            failing = self._failing_for(self.states[part.name], now)
            if failing is None or part.unready_after is None or failing < part.unready_after:
                continue
            state = self.states[part.name]
            reasons.append(f"background task {part.name} failing for {failing:.0f} s "
                           f"({state.last_error})")
        return "; ".join(reasons) or None

    def status(self) -> dict[str, Any]:
        """Per part, for /readyz: running, restarts, failing for how long, the last error."""
        now = self.monotonic()
        report: dict[str, Any] = {}
        for part in self.parts:
            state = self.states[part.name]
            failing = self._failing_for(state, now)
            entry: dict[str, Any] = {"running": state.running, "restarts": state.restarts,
                                     "affectsReadiness": part.unready_after is not None}
            if failing is not None:
                entry["failingSeconds"] = round(failing, 1)
            if state.last_error is not None:
                entry["lastError"] = state.last_error
            report[part.name] = entry
        return report
