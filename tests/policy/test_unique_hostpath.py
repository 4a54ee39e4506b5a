"""The overlap rule of ``unique.match: HostPath`` (webhook/policy/model/hostpath.py), and the
table every backend answers with (key_table.py), checked against the rule key by key."""

from __future__ import annotations

import random

import pytest

from webhook.policy.model.hostpath import (
    PlaceError,
    covering_hosts,
    covers,
    hosts_overlap,
    overlaps,
    parse_place,
)
from webhook.policy.model.key_table import KeyMatch, KeyTable


def overlap(a: str, b: str) -> bool:
    """Whether two HostPath keys overlap, asked both ways round (the rule is symmetric)."""
    first, second = overlaps(parse_place(a), parse_place(b)), overlaps(parse_place(b),
                                                                        parse_place(a))
    assert first == second, f"{a!r} and {b!r} overlap one way only"
    return first


@pytest.mark.parametrize(("a", "b", "expected"), [
    # Prefix and PathPrefix by segments, whatever the controller calls the type
    ("shop.example.com Prefix /", "shop.example.com Prefix /login", True),
    ("shop.example.com Prefix /", "shop.example.com PathPrefix /login", True),
    ("shop.example.com Prefix /foo", "shop.example.com Prefix /foo/bar", True),
    ("shop.example.com Prefix /foo", "shop.example.com Prefix /foobar", False),
    ("shop.example.com Prefix /foo/", "shop.example.com PathPrefix /foo", True),
    ("shop.example.com Prefix /foo", "shop.example.com Prefix /bar", False),
    ("shop.example.com ImplementationSpecific /api", "shop.example.com Prefix /api/v1", True),
    ("shop.example.com ImplementationSpecific /api", "shop.example.com Prefix /apix", False),
    # Exact as written
    ("shop.example.com Exact /a", "shop.example.com Prefix /", True),
    ("shop.example.com Exact /foo/bar", "shop.example.com Prefix /foo", True),
    ("shop.example.com Exact /foobar", "shop.example.com Prefix /foo", False),
    ("shop.example.com Exact /a", "shop.example.com Exact /a", True),
    ("shop.example.com Exact /a", "shop.example.com Exact /b", False),
    ("shop.example.com Exact /", "shop.example.com Prefix /login", False),
    # the whole host (GRPCRoute, TLSRoute) runs into any path on it
    ("shop.example.com", "shop.example.com Exact /deep/path", True),
    ("shop.example.com", "shop.example.com RegularExpression ^/x", True),
    ("shop.example.com", "blog.example.com", False),
    # regular expressions: everything on the host unless a fixed start rules it out
    ("shop.example.com RegularExpression /.*", "shop.example.com Prefix /anything", True),
    ("shop.example.com RegularExpression .*", "shop.example.com Exact /a", True),
    ("shop.example.com RegularExpression ^/api/.*", "shop.example.com Prefix /shop", False),
    ("shop.example.com RegularExpression ^/api/.*", "shop.example.com Prefix /api", True),
    ("shop.example.com RegularExpression ^/api/.*", "shop.example.com Prefix /", True),
    ("shop.example.com RegularExpression ^/apix", "shop.example.com Prefix /api", False),
    ("shop.example.com RegularExpression ^/api", "shop.example.com Prefix /api/v1", True),
    ("shop.example.com RegularExpression ^/api", "shop.example.com Exact /apis", True),
    ("shop.example.com RegularExpression ^/api", "shop.example.com Exact /ap", False),
    ("shop.example.com RegularExpression ^/shops?", "shop.example.com Prefix /shop", True),
    ("shop.example.com RegularExpression ^/a|/b", "shop.example.com Prefix /b", True),
    ("shop.example.com RegularExpression ^(?i)/API", "shop.example.com Prefix /api", True),
    ("shop.example.com RegularExpression ^/a/.*", "shop.example.com RegularExpression ^/b",
     False),
    ("shop.example.com RegularExpression ^/a/.*", "shop.example.com RegularExpression ^/a",
     True),
    ("shop.example.com RegularExpression ^/a/.*", "shop.example.com RegularExpression /b",
     True),
    # wildcards cover every name below their domain, not the domain itself
    ("*.wild.example.com", "a.wild.example.com Prefix /", True),
    ("*.wild.example.com Prefix /", "a.b.wild.example.com Prefix /x", True),
    ("*.wild.example.com", "wild.example.com", False),
    ("*.wild.example.com", "notwild.example.com", False),
    ("*.wild.example.com", "*.eu.wild.example.com", True),
    ("*.wild.example.com", "*.example.com", True),
    ("*.wild.example.com", "*.other.example.com", False),
    ("*.wild.example.com Prefix /a", "x.wild.example.com Prefix /b", False),
    # host names compare without case or trailing dot
    ("Shop.Example.com. Prefix /", "shop.example.com Exact /x", True),
])
def test_which_keys_overlap(a: str, b: str, expected: bool) -> None:
    assert overlap(a, b) is expected


@pytest.mark.parametrize(("outer", "inner", "expected"), [
    ("*.example.com", "pay.example.com", True),
    ("*.example.com", "a.pay.example.com", True),
    ("*.example.com", "*.pay.example.com", True),
    ("*.example.com", "*.example.com", True),
    ("*.pay.example.com", "*.example.com", False),
    ("*.example.com", "example.com", False),
    ("pay.example.com", "pay.example.com", True),
    ("pay.example.com", "*.pay.example.com", False),
])
def test_which_hosts_a_grant_covers(outer: str, inner: str, expected: bool) -> None:
    assert covers(outer, inner) is expected
    if expected:
        assert hosts_overlap(outer, inner)


@pytest.mark.parametrize(("key", "problem"), [
    ("shop.example.com Prefix", "not two fields"),
    ("shop.example.com Begins /x", "path type is one of"),
    ("a.*.example.com", "`*` alone as its first label"),
    ("*", "`*` alone as its first label"),
    ("shop.example.com/login", "must be a DNS name"),
    ("", "must be a DNS name"),
])
def test_a_malformed_key_says_what_the_shape_must_be(key: str, problem: str) -> None:
    with pytest.raises(PlaceError, match=problem) as error:
        parse_place(key)
    if len(key) > 1:
        assert key not in str(error.value)  # never the value itself


def test_a_path_with_spaces_is_one_field() -> None:
    place = parse_place("shop.example.com RegularExpression ^/a b/.*")
    assert place.path == "^/a b/.*" and place.fixed == "/a b/"


@pytest.mark.parametrize(("key", "segments"), [
    ("shop.example.com Prefix /", "/"), ("shop.example.com Prefix //a//b/", "/a/b/"),
    ("shop.example.com PathPrefix /a", "/a/"), ("shop.example.com Exact /a/b", "/a/b/"),
    ("shop.example.com Prefix ", "/"),
])
def test_a_path_is_read_as_its_segments(key: str, segments: str) -> None:
    assert parse_place(key).segments == segments


@pytest.mark.parametrize(("host", "found"), [
    ("shop.example.com", ("shop.example.com", "*.example.com", "*.com")),
    ("*.shop.example.com", ("*.shop.example.com", "*.example.com", "*.com")),
    ("*.com", ("*.com",)),
    ("localhost", ("localhost",)),
])
def test_a_host_is_found_under_itself_and_every_wildcard_above_it(
        host: str, found: tuple[str, ...]) -> None:
    assert covering_hosts(host) == found
    assert all(hosts_overlap(host, held) for held in found)


# ---- the table, against the rule ---------------------------------------------------------

HOSTS = ["shop.example.com", "a.shop.example.com", "b.a.shop.example.com", "*.shop.example.com",
         "*.a.shop.example.com", "*.example.com", "example.com", "blog.example.com",
         "other.example.org", "*.example.org"]
PATHS = ["", "Prefix /", "Prefix /a", "PathPrefix /a/b", "Prefix /ab", "Exact /a",
         "Exact /a/b/c", "ImplementationSpecific /b", "RegularExpression ^/a/.*",
         "RegularExpression /.*", "RegularExpression ^/c"]


def random_key(rng: random.Random) -> str:
    host, path = rng.choice(HOSTS), rng.choice(PATHS)
    return f"{host} {path}" if path else host


def test_the_table_finds_exactly_the_held_keys_that_overlap_as_objects_come_and_go() -> None:
    rng = random.Random(19)
    table: KeyTable[int] = KeyTable(KeyMatch.HOST_PATH)
    held: dict[int, frozenset[str]] = {}
    checked = 0
    for step in range(600):
        holder = rng.randrange(40)
        keys = frozenset(random_key(rng) for _ in range(rng.randrange(0, 4)))
        table.hold(holder, keys)
        held[holder] = keys
        probe = random_key(rng)
        expected: dict[str, set[int]] = {}
        for who, their_keys in held.items():
            for key in their_keys:
                if key == probe or overlap(probe, key):
                    expected.setdefault(key, set()).add(who)
        found = {key: set(holders) for key, holders in table.overlapping(probe).items()}
        assert found == expected, f"step {step}: {probe}"
        checked += bool(expected)
    assert checked > 100  # most probes ran into something: the comparison was not vacuous
    for holder in list(held):
        table.hold(holder, frozenset())
    assert len(table) == 0
    assert table.overlapping("shop.example.com") == {}


def test_an_exact_table_compares_strings() -> None:
    table: KeyTable[str] = KeyTable(KeyMatch.EXACT)
    table.hold("shop", frozenset({"shop.example.com/"}))
    assert table.overlapping("shop.example.com/") == {"shop.example.com/": frozenset({"shop"})}
    assert table.overlapping("shop.example.com/login") == {}
