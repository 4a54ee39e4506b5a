"""The generated size check (budget.size_check) answers as ``fits`` does on any input, for
every walk the shipped policies make, and for walks nested past Python's blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.policy.engine.budget import fits, size_check
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.load.loader import load_policies

ROOT = Path(__file__).resolve().parents[2]
WALKS = CompiledPolicies.compile(load_policies(ROOT / "policies")).size_walks

_KEYS = st.sampled_from(["spec", "metadata", "rules", "tls", "hosts", "http", "paths",
                         "annotations", "name", "externalIPs", "loadBalancerSourceRanges",
                         "listeners", "allowedRoutes", "namespaces", "selector",
                         "matchLabels", "hostnames", "host", "path", "kind", "x"])
_VALUE = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3)
    | st.lists(st.none(), min_size=99, max_size=102)
    | st.dictionaries(_KEYS, inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), st.none(), min_size=99, max_size=102),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(sorted(WALKS)),
       values=st.fixed_dictionaries({}, optional={
           root: _VALUE for root in ("object", "oldObject", "namespaceObject", "request")}))
def test_the_generated_check_agrees_with_fits(kind: str, values: dict[str, Any]) -> None:
    walks = WALKS[kind]
    assert size_check(walks).fits(values) is fits(values, walks)


def test_a_walk_nested_past_pythons_blocks_is_checked_by_fits() -> None:
    walk: Any = ((), None)
    for _ in range(30):  # a list in a list, 30 deep: a loop each, Python allows 20 blocks
        walk = ((), walk)
    check = size_check({"object": walk})
    assert check.fits.__code__.co_filename != "<size check>"  # fits itself, by a lambda
    for bottom, expected in (([1] * 100, True), ([1] * 101, False)):
        deep: Any = bottom
        for _ in range(30):
            deep = [deep]
        assert check.fits({"object": deep}) is expected
        assert fits({"object": deep}, {"object": walk}) is expected


@pytest.mark.parametrize("kind", sorted(WALKS))
def test_every_shipped_kind_has_a_generated_check(kind: str) -> None:
    check = size_check(WALKS[kind])
    assert check.fits.__name__ == "fits" and check.fits.__code__.co_filename == "<size check>"
