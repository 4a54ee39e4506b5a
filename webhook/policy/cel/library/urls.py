"""Kubernetes' url library, with Go's ``net/url`` rules: ``url()`` and ``isURL()`` accept
what ``url.ParseRequestURI`` accepts (an absolute URL, or an absolute path), and the getters
read what ``url.Parse`` makes of it.

A URL is carried as the string it was made from."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_PORT = re.compile(r"[0-9]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ERROR = "URL parse error during conversion from string"


@dataclass(frozen=True)
class Parsed:
    scheme: str
    host: str  # host[:port], as Go's URL.Host
    path: str  # escaped, as written
    query: str


def _split_scheme(raw: str) -> tuple[str, str]:
    """Go's getScheme: the scheme before the first ':' when it is one, else none."""
    for index, char in enumerate(raw):
        if char == ":":
            if index == 0:
                raise LibraryError(f"{_ERROR}: missing protocol scheme")
            return raw[:index], raw[index + 1:]
        if not (char.isascii() and (char.isalpha() or (index and (char.isdigit()
                                                                    or char in "+-.")))):
            return "", raw
    return "", raw


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        rest = host[end + 1:]
        return rest == "" or (rest.startswith(":") and bool(_PORT.fullmatch(rest[1:])))
    name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    if colon and not _PORT.fullmatch(port):
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                  "-._~!$&'()*+,;=%")
    return all(c in allowed or not c.isascii() for c in name) and not _BAD_ESCAPE.search(name)


def parse_request_uri(raw: Any, function: str) -> Parsed:
    """What ``url.ParseRequestURI`` accepts; the parts as ``url.Parse`` reads them."""
    if not isinstance(raw, str):
        raise no_such_overload(function)
    if raw == "":
        raise LibraryError(f"{_ERROR}: empty url")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise LibraryError(f"{_ERROR}: invalid control character in URL")
    scheme, rest = _split_scheme(raw)
    if not scheme and not rest.startswith("/"):
        raise LibraryError(f"{_ERROR}: invalid URI for request")
    if scheme and not rest.startswith("/"):  # a rootless path is opaque: mailto:x@y
        _opaque, _, query = rest.split("#", 1)[0].partition("?")
        return Parsed(scheme.lower(), "", "", query)
    without_fragment = rest.split("#", 1)[0]
    path_part, _, query = without_fragment.partition("?")
    host = ""
    if path_part.startswith("//"):
        authority, slash, tail = path_part[2:].partition("/")
        path_part = slash + tail
        _userinfo, at, hostport = authority.rpartition("@")
        host = hostport if at else authority
        if not _valid_host(host):
            raise LibraryError(f"{_ERROR}: invalid host or port")
    if _BAD_ESCAPE.search(path_part):
        raise LibraryError(f"{_ERROR}: invalid URL escape")
    return Parsed(scheme.lower(), host, path_part, query)


def url(raw: Any) -> str:
    parse_request_uri(raw, "url")
    return str(raw)


def is_url(raw: Any) -> bool:
    if not isinstance(raw, str):
        raise no_such_overload("isURL")
    try:
        parse_request_uri(raw, "isURL")
    except LibraryError:
        return False
    return True


def get_scheme(value: Any) -> str:
    return parse_request_uri(value, "getScheme").scheme


def get_host(value: Any) -> str:
    return parse_request_uri(value, "getHost").host


def _host_and_port(host: str) -> tuple[str, str]:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end], host[end + 2:] if host[end + 1:end + 2] == ":" else ""
    if ":" in host:
        name, _, port = host.rpartition(":")
        return name, port
    return host, ""


def get_hostname(value: Any) -> str:
    return _host_and_port(parse_request_uri(value, "getHostname").host)[0]


def get_port(value: Any) -> str:
    return _host_and_port(parse_request_uri(value, "getPort").host)[1]


_PATH_AS_WRITTEN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~/%!$&'()*+,;=:@[]"
)


def get_escaped_path(value: Any) -> str:
    """Go's ``EscapedPath``: the path as written when that is a valid encoding of it, else
    the decoded path escaped again (``$&+,/:;=@`` stay, the rest of the reserved go)."""
    path = parse_request_uri(value, "getEscapedPath").path
    if all(char in _PATH_AS_WRITTEN for char in path):
        return path
    return urllib.parse.quote(urllib.parse.unquote(path), safe="$&+,/:;=@")


def get_query(value: Any) -> dict[str, list[str]]:
    query = parse_request_uri(value, "getQuery").query
    result: dict[str, list[str]] = {}
    for part in query.split("&"):
        if not part or ";" in part:  # Go's ParseQuery drops (and reports) these pairs
            continue
        key, _, item = part.partition("=")
        try:
            name = urllib.parse.unquote_plus(key, errors="strict")
            text = urllib.parse.unquote_plus(item, errors="strict")
        except UnicodeDecodeError:
            continue
        if _BAD_ESCAPE.search(key) or _BAD_ESCAPE.search(item):
            continue
        result.setdefault(name, []).append(text)
    return result


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "url": url,
    "isURL": is_url,
    "getScheme": get_scheme,
    "getHost": get_host,
    "getHostname": get_hostname,
    "getPort": get_port,
    "getEscapedPath": get_escaped_path,
    "getQuery": get_query,
}
