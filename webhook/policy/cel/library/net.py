"""Kubernetes' ip and cidr libraries, with Go's net/netip rules (what the API server uses):
no zones, no IPv4-mapped IPv6, no leading zeros in IPv4 octets or prefix lengths.

An IP is carried as the string ``netip.Addr.String()`` prints, a CIDR as
``netip.Prefix.String()`` (the address as given, not masked: ``cidr('10.0.0.1/8')``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_BITS = re.compile(r"0|[1-9][0-9]{0,2}")


def parse_ip(raw: Any, function: str = "ip") -> Address:
    if not isinstance(raw, str):
        raise no_such_overload(function)
    if "%" in raw:
        raise LibraryError("IP address with zone value is not allowed")
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise LibraryError("IP Address parse error during conversion from string") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise LibraryError("IPv4-mapped IPv6 address is not allowed")
    return address


def parse_cidr(raw: Any, function: str = "cidr") -> tuple[Address, int]:
    if not isinstance(raw, str):
        raise no_such_overload(function)
    address_part, slash, bits_part = raw.partition("/")
    error = LibraryError("network address parse error during conversion from string")
    if not slash or not _BITS.fullmatch(bits_part) or "%" in address_part:
        raise error
    try:
        address = ipaddress.ip_address(address_part)
    except ValueError:
        raise error from None
    bits = int(bits_part)
    if bits > address.max_prefixlen:
        raise error
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise LibraryError("IPv4-mapped IPv6 address is not allowed")
    return address, bits


def _text(address: Address) -> str:
    return str(address)  # Python prints RFC 5952 as Go does (no mapped forms reach here)


def ip(raw: Any) -> str:
    return _text(parse_ip(raw))


def is_ip(raw: Any) -> bool:
    if not isinstance(raw, str):
        raise no_such_overload("isIP")
    try:
        parse_ip(raw)
    except LibraryError:
        return False
    return True


def is_canonical(raw: Any) -> bool:
    return bool(_text(parse_ip(raw, "ip.isCanonical")) == raw)


def family(value: Any) -> int:
    return parse_ip(value, "family").version


def is_unspecified(value: Any) -> bool:
    return bool(parse_ip(value, "isUnspecified").is_unspecified)


def is_loopback(value: Any) -> bool:
    address = parse_ip(value, "isLoopback")
    return address.is_loopback


def is_link_local_multicast(value: Any) -> bool:
    address = parse_ip(value, "isLinkLocalMulticast")
    if address.version == 4:
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    return (int(address) >> 112) & 0xFF0F == 0xFF02


def is_link_local_unicast(value: Any) -> bool:
    address = parse_ip(value, "isLinkLocalUnicast")
    if address.version == 4:
        return address in ipaddress.IPv4Network("169.254.0.0/16")
    return address in ipaddress.IPv6Network("fe80::/10")


def is_global_unicast(value: Any) -> bool:
    """Go's ``IsGlobalUnicast``: not unspecified, loopback, multicast, link-local unicast or
    the IPv4 broadcast address (private ranges count as global unicast)."""
    address = parse_ip(value, "isGlobalUnicast")
    if address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (address.is_unspecified or address.is_loopback or address.is_multicast
                or is_link_local_unicast(value))


def cidr(raw: Any) -> str:
    address, bits = parse_cidr(raw)
    return f"{_text(address)}/{bits}"


def is_cidr(raw: Any) -> bool:
    if not isinstance(raw, str):
        raise no_such_overload("isCIDR")
    try:
        parse_cidr(raw)
    except LibraryError:
        return False
    return True


def _network(value: Any, function: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    address, bits = parse_cidr(value, function)
    return ipaddress.ip_network(f"{address}/{bits}", strict=False)


def contains_ip(value: Any, other: Any) -> bool:
    network = _network(value, "containsIP")
    address = parse_ip(other, "containsIP")
    return address.version == network.version and address in network


def contains_cidr(value: Any, other: Any) -> bool:
    network = _network(value, "containsCIDR")
    inner = _network(other, "containsCIDR")
    return inner.version == network.version and inner.subnet_of(network)  # type: ignore[arg-type]


def prefix_length(value: Any) -> int:
    return parse_cidr(value, "prefixLength")[1]


def cidr_ip(value: Any) -> str:
    """``cidr.ip()``: the prefix's address as written (the rewrite names the method form
    ``_cidr_ip`` so it never meets the global ``ip(string)``)."""
    return _text(parse_cidr(value, "ip")[0])


def masked(value: Any) -> str:
    network = _network(value, "masked")
    return f"{_text(network.network_address)}/{network.prefixlen}"


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ip": ip,
    "isIP": is_ip,
    "ip.isCanonical": is_canonical,
    "family": family,
    "isUnspecified": is_unspecified,
    "isLoopback": is_loopback,
    "isLinkLocalMulticast": is_link_local_multicast,
    "isLinkLocalUnicast": is_link_local_unicast,
    "isGlobalUnicast": is_global_unicast,
    "cidr": cidr,
    "isCIDR": is_cidr,
    "containsIP": contains_ip,
    "containsCIDR": contains_cidr,
    "prefixLength": prefix_length,
    "_cidr_ip": cidr_ip,
    "masked": masked,
}
