"""``eventually``: the one polling helper every test waits with."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support import TimedOut, eventually, eventually_async


def test_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert eventually(lambda: next(counter) >= 3 and "done") == "done"


def test_says_what_it_waited_for_when_time_runs_out() -> None:
    with pytest.raises(TimedOut, match=r"waiting for the moon \(last value: 0\)"):
        eventually(lambda: 0, timeout=0.05, what=lambda: "the moon")


def test_an_assertion_in_the_check_ends_the_wait_at_once() -> None:
    def check() -> bool:
        raise AssertionError("a request failed")

    with pytest.raises(AssertionError, match="a request failed") as caught:
        eventually(check, timeout=60)
    assert not isinstance(caught.value, TimedOut)


def test_the_async_form_lets_the_loop_run_between_attempts() -> None:
    async def scenario() -> str:
        seen: list[str] = []
        asyncio.get_running_loop().call_soon(seen.append, "callback ran")
        return await eventually_async(lambda: seen[0] if seen else "")

    assert asyncio.run(scenario()) == "callback ran"
