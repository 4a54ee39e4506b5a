"""Which hosts and paths overlap: the ownership rule of ``unique`` with ``match: HostPath``.

A HostPath key names what a route serves. ``keys`` writes each as one string:

* ``HOST`` - the whole host, every path (a GRPCRoute or TLSRoute hostname);
* ``HOST TYPE PATH`` - one path match: TYPE is ``Prefix`` or ``ImplementationSpecific``
  (Ingress), ``PathPrefix`` (Gateway API), ``Exact``, or ``RegularExpression``; PATH is the
  rest of the string, spaces included.

Two keys overlap when some request could reach both: their hosts share a name and their
paths share a request path.

Hosts: ``*.example.com`` stands for every name below example.com, at any depth. That is
the Gateway API's rule (a suffix match); the Ingress spec says one label, but ingress-nginx
hands ``*.example.com`` to nginx, whose wildcard names span labels, so ownership takes the
wider reading: a route that could take a name's traffic under some controller overlaps it.

Paths, as the Ingress and Gateway API specs match them: a prefix covers the paths under it
by ``/``-separated segments (``/foo`` covers ``/foo`` and ``/foo/bar``, not ``/foobar``; a
trailing slash changes nothing); ImplementationSpecific is judged as Prefix (ingress-nginx's
reading without its regex annotation); Exact is the one path as written. A regular
expression cannot be compared with a path in general, so it overlaps every path on its host
unless it starts with ``^`` and a fixed start (the characters before the first regex
operator; no ``|`` anywhere) that no path of the other key can begin with. That proof holds
in every regex dialect, and is the only one attempted.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

PREFIX_TYPES = frozenset({"Prefix", "PathPrefix", "ImplementationSpecific"})
EXACT_TYPE = "Exact"
REGEX_TYPE = "RegularExpression"
PATH_TYPES = (*sorted(PREFIX_TYPES), EXACT_TYPE, REGEX_TYPE)

_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.*")
# The characters that end a regular expression's fixed start in any common dialect.
_REGEX_OPERATORS = frozenset("\\.^$|?*+()[]{}")
# Operators that make the character before them optional.
_OPTIONAL = frozenset("?*{")

REGEX_NOTE = (
    "a RegularExpression path is taken to overlap every path on its host unless it starts "
    "with ^ and a fixed prefix that rules the overlap out"
)


class PlaceError(ValueError):
    """A string that is not a HostPath key; the message says what the shape must be."""


class PathKind(StrEnum):
    WHOLE = "whole"  # the whole host
    PREFIX = "prefix"
    EXACT = "exact"
    REGEX = "regex"


class Place(NamedTuple):
    """One parsed HostPath key: a host (or wildcard) and a path match. A named tuple, not a
    frozen dataclass: as immutable, and made in under half the time (a new route's keys
    are parsed on every admission)."""

    host: str  # lower case, no trailing dot; ``*.example.com`` for a wildcard
    kind: PathKind
    path: str = ""  # as written ("" for the whole host)
    # A prefix's (or exact path's) segments, as "/a/b/" ("/" for the root): one path is
    # under another when its string starts with the other's
    segments: str = "/"
    fixed: str | None = None  # a regex's fixed start; None when nothing is proven

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    def same(self, other: Place) -> bool:
        """Whether both keys match the same requests (``Prefix /a/`` and ``PathPrefix /a``)."""
        if self.host != other.host:
            return False
        mine, theirs = _comparable(self), _comparable(other)
        if mine is PathKind.PREFIX and theirs is PathKind.PREFIX:
            return self.segments == other.segments
        return mine is theirs and self.path == other.path

    def __str__(self) -> str:
        if self.kind is PathKind.WHOLE:
            return f"{self.host} (whole host)"
        if self.kind is PathKind.PREFIX:
            return f"{self.host}{self.path}"
        spaced = self.path if self.path.startswith("/") else f" {self.path}"
        kind = EXACT_TYPE if self.kind is PathKind.EXACT else REGEX_TYPE
        return f"{self.host}{spaced} ({kind})"


def _comparable(place: Place) -> PathKind:
    return PathKind.PREFIX if place.kind is PathKind.WHOLE else place.kind


# A request's keys are parsed by the key block, the ownership check and the key table in
# turn, and the same hosts come back request after request; a Place is immutable, so one
# parse serves them all. Bounded, as keys come from the objects users send.
@lru_cache(maxsize=16_384)
def parse_place(key: str) -> Place:
    """The Place a HostPath key names; PlaceError (never quoting the key) when malformed."""
    parts = key.split(" ", 2)
    if len(parts) == 2:
        raise PlaceError("a HostPath key is `HOST` or `HOST TYPE PATH`, not two fields")
    host = parse_host(parts[0])
    if len(parts) == 1:
        return Place(host, PathKind.WHOLE)
    kind, path = parts[1], parts[2]
    if kind in PREFIX_TYPES:
        written = path or "/"
        return Place(host, PathKind.PREFIX, written, _segments(written))
    if kind == EXACT_TYPE:
        return Place(host, PathKind.EXACT, path, _segments(path))
    if kind == REGEX_TYPE:
        return Place(host, PathKind.REGEX, path, fixed=_fixed_start(path))
    raise PlaceError(f"a HostPath key's path type is one of {', '.join(PATH_TYPES)}")


def parse_host(text: str) -> str:
    """A host or ``*.``-wildcard, lower case without a trailing dot; PlaceError otherwise."""
    host = text.strip().lower().rstrip(".")
    labels = host.split(".")
    if not host or "" in labels or not _HOST_CHARACTERS.issuperset(host):
        raise PlaceError("a HostPath key's host must be a DNS name, e.g. shop.example.com")
    if "*" in host and (labels[0] != "*" or "*" in host[1:] or len(labels) < 2):
        raise PlaceError("a wildcard host has `*` alone as its first label, e.g. *.example.com")
    return host


def _segments(path: str) -> str:
    """``/foo//bar/`` -> ``/foo/bar/``: empty segments and a trailing slash change nothing."""
    segments = "/".join(filter(None, path.split("/")))
    return f"/{segments}/" if segments else "/"


def _fixed_start(pattern: str) -> str | None:
    """What every path a regex matches begins with, or None when that cannot be said."""
    if not pattern.startswith("^") or "|" in pattern:
        return None
    fixed: list[str] = []
    for char in pattern[1:]:
        if char in _REGEX_OPERATORS:
            if char in _OPTIONAL and fixed:
                fixed.pop()  # `a?`, `a*`, `a{0,1}`: the character may be absent
            break
        fixed.append(char)
    return "".join(fixed)


# ---- hosts -----------------------------------------------------------------------------


def base_of(host: str) -> str:
    """The domain a wildcard stands below (``*.example.com`` -> ``example.com``); a
    precise host is its own base."""
    return host[2:] if host.startswith("*.") else host


def _below(name: str, domain: str) -> bool:
    return name.endswith("." + domain)


def hosts_overlap(a: str, b: str) -> bool:
    """Whether some name is served under both hosts (either may be a wildcard)."""
    wild_a, wild_b = a.startswith("*."), b.startswith("*.")
    if not wild_a and not wild_b:
        return a == b
    if wild_a and wild_b:
        base_a, base_b = a[2:], b[2:]
        return base_a == base_b or _below(base_a, base_b) or _below(base_b, base_a)
    wildcard, precise = (a, b) if wild_a else (b, a)
    return _below(precise, wildcard[2:])


def covers(outer: str, inner: str) -> bool:
    """Whether every name under ``inner`` is under ``outer``."""
    if not outer.startswith("*."):
        return outer == inner
    domain = outer[2:]
    return _below(base_of(inner), domain) or (inner.startswith("*.") and inner[2:] == domain)


def narrower(a: str, b: str) -> str:
    """Of two overlapping hosts, the one covering fewer names (their common part)."""
    return a if covers(b, a) else b


def specificity(host: str) -> tuple[int, int]:
    """Orders hosts by the names they cover: a precise host before any wildcard, a longer
    wildcard before a shorter one."""
    return (0 if host.startswith("*.") else 1, base_of(host).count("."))


def parents(domain: str) -> list[str]:
    """The domains strictly above ``domain``: ``a.b.c`` -> ``b.c``, ``c``."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


@lru_cache(maxsize=16_384)  # as parse_place: the same hosts come back request after request
def covering_hosts(host: str) -> tuple[str, ...]:
    """The held hosts that overlap ``host`` and are found by name: itself and every
    wildcard above it. (Hosts below a wildcard are found through an index by domain.)"""
    base = base_of(host)
    found = [host]
    dot = base.find(".")
    while dot >= 0:  # each domain strictly above the base, as parents() gives them
        found.append("*." + base[dot + 1:])
        dot = base.find(".", dot + 1)
    return tuple(found)


# ---- paths -----------------------------------------------------------------------------


def _under(segments: str, prefix: str) -> bool:
    return segments.startswith(prefix)


def paths_overlap(a: Place, b: Place) -> bool:
    """Whether some request path matches both keys' paths (hosts aside)."""
    if a.kind is PathKind.REGEX:
        return _regex_overlaps(a, b)
    if b.kind is PathKind.REGEX:
        return _regex_overlaps(b, a)
    if a.kind is PathKind.EXACT and b.kind is PathKind.EXACT:
        return a.path == b.path
    if a.kind is PathKind.EXACT:
        return _under(a.segments, b.segments)
    if b.kind is PathKind.EXACT:
        return _under(b.segments, a.segments)
    return _under(a.segments, b.segments) or _under(b.segments, a.segments)


def _regex_overlaps(regex: Place, other: Place) -> bool:
    if regex.fixed is None:
        return True
    fixed = regex.fixed
    if other.kind is PathKind.REGEX:
        return other.fixed is None or fixed.startswith(other.fixed) \
            or other.fixed.startswith(fixed)
    if other.kind is PathKind.EXACT:
        return other.path.startswith(fixed)
    # A prefix covers its own path and everything below its last segment.
    root = other.segments
    return fixed.startswith(root) or root.startswith(fixed)


def overlaps(a: Place, b: Place) -> bool:
    """Whether some request reaches both keys."""
    return hosts_overlap(a.host, b.host) and paths_overlap(a, b)
