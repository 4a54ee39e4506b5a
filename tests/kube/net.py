"""Loopback ports.

A port handed out here is bound later by another process (a server, etcd, a replica), so
something else may take it in between. Asking the kernel for one (bind to port 0) picks it
from the ephemeral range, the same range every outgoing connection of the run takes its
local port from: with two pytest workers opening thousands of connections to API servers
and replicas, a replica lost its probe port to one ("cannot listen on 127.0.0.1:47097:
Address already in use") between the pick and its bind.

So ports come from below the ephemeral range, where no outgoing connection takes one;
each pytest-xdist worker has a slice of its own, so two workers never pick the same port;
and a process goes through its slice in turn, so it hands out a port again only after
every other one of the slice. A port is handed out only if it can be bound at that moment
(not in use, not in TIME_WAIT).
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

# Below it the ports are the system's own; above the range's end, ephemeral again.
_LOWEST = 10_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _range() -> range:
    """This process's slice of the ports below the ephemeral range."""
    try:
        ephemeral_start = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_start = 32_768  # Linux's default
    top = max(ephemeral_start, _LOWEST + 2_000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"...
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    width = (top - _LOWEST) // max(workers, 1)
    start = _LOWEST + (index % max(workers, 1)) * width
    return range(start, start + width)


class _Ports:
    """Hands out the ports of this process's slice in turn, from a random place (two
    processes of one worker, such as a test run and a tool it starts, are unlikely to
    meet)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ports: range | None = None
        self._cycle: Iterator[int] | None = None

    def take(self) -> int:
        with self._lock:
            if self._ports is None or self._cycle is None:
                ports = self._ports = _range()
                offset = random.randrange(len(ports))
                self._cycle = itertools.cycle([*ports[offset:], *ports[:offset]])
            for _ in range(len(self._ports)):
                port = next(self._cycle)
                if _bindable(port):
                    return port
        raise OSError("no free port below the ephemeral range")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_PORTS = _Ports()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, outside the range the kernel
    gives outgoing connections, not handed out lately by this process (see above)."""
    return _PORTS.take()


def free_ports(count: int) -> list[int]:
    """``count`` different free ports (one process given ``--probe-port`` equal to
    ``--metrics-port`` refuses to start)."""
    return [_PORTS.take() for _ in range(count)]


def listening(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
