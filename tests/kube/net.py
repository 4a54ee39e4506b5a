"""Loopback ports."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it).

    Another process may take it before ours binds (envtest accepts the same race); the
    kernel hands out ephemeral ports in turn, so a clash right away is unlikely."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: all are bound at once before any is let go, so two
    calls in a row can never hand out the same port twice (the kernel may reuse a port
    the moment it is closed, and one process given ``--probe-port`` equal to
    ``--metrics-port`` refuses to start)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def listening(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
