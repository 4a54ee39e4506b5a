"""Waiting for a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


def until(condition: Callable[[], T], what: str, timeout: float, *, interval: float = 0.1,
          check: Callable[[], None] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy and return that.

    ``check`` runs before each poll and may raise at once (e.g. the process we wait for
    has exited) rather than let the wait run into its deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(interval)


class Kubectl(Protocol):
    def __call__(self, *args: str, check: bool = ...) -> subprocess.CompletedProcess[str]: ...


def crds_established(kubectl: Kubectl, *crds: str, timeout: float = 60.0) -> None:
    """Wait until each CRD named (``crd/NAME``, or ``-fPATH`` for the CRDs in a file)
    reports Established.

    Not ``kubectl wait --for=condition=established``: on a freshly created CRD whose status
    has no conditions yet it fails at once ("status.conditions accessor error") instead of
    waiting, which a loaded machine hits."""

    def all_established() -> bool:
        result = kubectl("get", *crds, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        document = json.loads(result.stdout)
        found = document["items"] if document.get("kind") == "List" else [document]
        return bool(found) and all(
            any(condition.get("type") == "Established" and condition.get("status") == "True"
                for condition in crd.get("status", {}).get("conditions") or [])
            for crd in found)

    until(all_established, f"{', '.join(crds)} to be Established", timeout, interval=0.2)
