"""etcd for one test session, and the two things tests do to it directly: learn its current
revision and compact its history (through etcd's JSON gateway, so no etcdctl is needed)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .net import free_ports
from .processes import ManagedProcess
from .wait import until

# A port found free may be taken by another process before etcd binds it (envtest accepts
# the same race): etcd then exits with "address already in use", and starts again on
# other ports, this many times in all.
BIND_ATTEMPTS = 3


class Etcd:
    def __init__(self, binary: Path, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self._attempt = 0
        self.process = self._on_new_ports()

    def _on_new_ports(self) -> ManagedProcess:
        self.client_port, peer_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        # A data directory per attempt: a failed one may have begun to initialise its own.
        data = self.folder / ("data" if not self._attempt else f"data-{self._attempt}")
        return ManagedProcess("etcd", [
            str(self.binary),
            "--name=edgewarden-test",
            f"--data-dir={data}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=edgewarden-test={peer}",
            # A test cluster lives minutes; durability only costs time here (as in envtest).
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ], self.folder / "etcd.log")

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until healthy; ``url`` may change (new ports after a clash)."""
        while True:
            self.process.start()
            try:
                until(self._healthy, "etcd to answer /health", timeout,
                      check=self.process.check_alive)
                return
            except RuntimeError as error:
                self._attempt += 1
                if "address already in use" not in str(error) or self._attempt >= BIND_ATTEMPTS:
                    raise
                self.process.stop()
                self.process = self._on_new_ports()

    def stop(self) -> None:
        self.process.stop()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(json.load(response).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.load(response)
        return answer

    def revision(self) -> int:
        """The store's current revision (a Kubernetes resourceVersion is one of these)."""
        answer = self._post("/v3/kv/range", {"key": _b64("edgewarden-test/revision-probe")})
        return int(answer["header"]["revision"])

    def bump(self) -> int:
        """Write a key outside the API server's prefix: the revision moves on by one."""
        answer = self._post("/v3/kv/put", {"key": _b64("edgewarden-test/bump"),
                                           "value": _b64("x")})
        return int(answer["header"]["revision"])

    def compact(self) -> int:
        """Drop all history up to now: a watch or list from an older resourceVersion then
        gets 410 Gone. Returns the revision compacted at."""
        revision = self.bump()
        self._post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
