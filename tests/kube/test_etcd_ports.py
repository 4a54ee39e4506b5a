"""etcd starts again on other ports when one it was given is taken before it binds it (a
whole run lost a control plane, and 60 tests with it, to that race)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import etcd as etcd_module
from .binaries import BinariesMissing, locate
from .etcd import Etcd


@pytest.fixture
def etcd_binary() -> Path:
    try:
        return locate().etcd
    except BinariesMissing as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(missing))


@pytest.fixture
def taken() -> Iterator[socket.socket]:
    """A port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener


def test_etcd_given_a_taken_port_starts_again_on_free_ones(
    etcd_binary: Path, taken: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    busy = taken.getsockname()[1]
    handed: list[list[int]] = []
    real = etcd_module.free_ports

    def first_one_taken(count: int) -> list[int]:
        ports = real(count) if handed else [busy, *real(count - 1)]
        handed.append(ports)
        return ports

    monkeypatch.setattr(etcd_module, "free_ports", first_one_taken)
    server = Etcd(etcd_binary, tmp_path)
    assert server.client_port == busy
    try:
        server.start()
        assert len(handed) == 2, "new ports after the clash"
        assert server.client_port != busy and server.url.endswith(f":{server.client_port}")
        assert server.revision() >= 1
        assert "address already in use" in (tmp_path / "etcd.log").read_text()
    finally:
        server.stop()


def test_etcd_failing_for_another_reason_is_not_started_again(
    etcd_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = Etcd(etcd_binary, tmp_path)
    server.process.argv.append("--no-such-flag")
    with pytest.raises(RuntimeError, match="etcd exited"):
        server.start()
    server.stop()
