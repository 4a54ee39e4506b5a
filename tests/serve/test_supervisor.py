"""The supervisor: a background task that fails is restarted with backoff, logged once per
streak, counted, and reflected in readiness only when its failure matters; one that recovers
is healthy again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from urllib3.exceptions import ProtocolError

from webhook.background import BackgroundWork
from webhook.serve.supervisor import Backoff, Supervisor

QUICK = Backoff(initial=0.001, maximum=0.005, healthy_after=0.2)


@dataclass
class Counted:
    restarts: dict[str, int] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=dict)

    def count_background_restart(self, task: str) -> None:
        self.restarts[task] = self.restarts.get(task, 0) + 1

    def set_background_up(self, task: str, up: bool) -> None:
        self.up[task] = up


def failing(times: int, error: Callable[[], BaseException],
            calls: list[int]) -> Callable[[], Coroutine[Any, Any, None]]:
    """A task that raises ``times`` times, then runs until cancelled."""

    async def run() -> None:
        calls.append(1)
        if len(calls) <= times:
            raise error()
        await asyncio.Event().wait()

    return run


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def run_for(supervisor: Supervisor, condition: Callable[[], bool], what: str) -> None:
    task = asyncio.create_task(supervisor.run())
    try:
        await until(condition, what)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_transport_error_restarts_the_task_and_is_logged_once_per_streak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    counted = Counted()
    work = BackgroundWork("leader-election",
                          failing(25, lambda: ProtocolError("Connection aborted."), calls))
    supervisor = Supervisor([work], counter=counted, backoff=QUICK)
    with caplog.at_level(logging.DEBUG, logger="edgewarden.supervisor"):
        asyncio.run(run_for(supervisor, lambda: len(calls) > 25, "the 26th start"))

    assert counted.restarts == {"leader-election": 25}
    assert counted.up["leader-election"] is True  # running again
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "leader-election failed: ProtocolError: Connection aborted." in errors[0].getMessage()
    # then one line every tenth failure of the streak, not one per failure
    assert [w.getMessage().split(" (")[0] for w in warnings] == [
        "background task leader-election failed 10 times in a row",
        "background task leader-election failed 20 times in a row",
    ]


@pytest.mark.parametrize("error", [RecursionError, MemoryError, lambda: KeyError("x")])
def test_any_exception_is_survived(error: Callable[[], BaseException]) -> None:
    calls: list[int] = []
    supervisor = Supervisor([BackgroundWork("cluster-objects", failing(2, error, calls))],
                            backoff=QUICK)
    asyncio.run(run_for(supervisor, lambda: len(calls) == 3, "the third start"))
    assert supervisor.states["cluster-objects"].restarts == 2


def test_a_task_that_returns_is_started_again() -> None:
    calls: list[int] = []

    async def once() -> None:
        calls.append(1)

    supervisor = Supervisor([BackgroundWork("policy-files", once)], backoff=QUICK)
    asyncio.run(run_for(supervisor, lambda: len(calls) >= 3, "three starts"))
    assert supervisor.states["policy-files"].last_error == (
        "it returned (it should run until stopped)")


def test_readiness_fails_only_for_a_part_that_matters_and_only_after_its_bound() -> None:
    async def always_failing() -> None:
        raise ConnectionResetError("reset by peer")

    now = [100.0]
    supervisor = Supervisor(
        [BackgroundWork("cluster-objects", always_failing, unready_after=30.0),
         BackgroundWork("continuous-audit", always_failing)],
        backoff=Backoff(initial=0.001, maximum=0.002, healthy_after=5.0),
        monotonic=lambda: now[0],
    )

    async def scenario() -> None:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: supervisor.states["cluster-objects"].restarts >= 3, "restarts")
        assert supervisor.not_ready() is None  # failing, but for less than 30 s
        now[0] += 31.0
        reason = supervisor.not_ready()
        assert reason is not None
        assert reason.startswith("background task cluster-objects failing for 31 s "
                                 "(ConnectionResetError: reset by peer)")
        assert "continuous-audit" not in reason  # reports only: never unready
        status = supervisor.status()
        assert status["continuous-audit"]["affectsReadiness"] is False
        assert status["cluster-objects"]["lastError"] == "ConnectionResetError: reset by peer"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_part_that_runs_long_enough_after_a_restart_is_healthy_again() -> None:
    calls: list[int] = []
    now = [0.0]
    supervisor = Supervisor(
        [BackgroundWork("cluster-objects",
                        failing(1, lambda: ProtocolError("cut"), calls), unready_after=0.0)],
        backoff=Backoff(initial=0.001, maximum=0.002, healthy_after=10.0),
        monotonic=lambda: now[0],
    )

    async def scenario() -> None:
        task = asyncio.create_task(supervisor.run())
        await until(lambda: len(calls) == 2, "the restart")
        assert supervisor.not_ready() is not None  # restarted, not yet proven healthy
        now[0] += 10.0
        assert supervisor.not_ready() is None
        assert "failingSeconds" not in supervisor.status()["cluster-objects"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_task_names_must_be_unique() -> None:
    async def idle() -> None:
        await asyncio.Event().wait()

    with pytest.raises(ValueError, match="unique"):
        Supervisor([BackgroundWork("a", idle), BackgroundWork("a", idle)])
