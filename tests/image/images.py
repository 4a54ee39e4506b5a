"""Where the image is, and how to run something in it without a container daemon.

``scripts/image`` builds the image (a first build takes minutes); the tests never build:
``scripts/test`` runs the script before pytest. ``scripts/image --check`` names the image
when one built from the current tree is in podman's storage. When it is not, CI
(``CI=true``) fails the run and anywhere else the tests that need it skip, saying why.

A container runs with ``buildah run --isolation chroot --network host``: no daemon, no
namespaces beyond a chroot, which is what works inside this project's CI container
(``podman run`` needs setrlimit there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "image"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def storage_driver() -> str:
    return os.environ.get("EDGEWARDEN_PODMAN_STORAGE_DRIVER", "vfs")


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, where the image cannot be had."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the image tests must run)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Image:
    reference: str
    podman: str
    buildah: str

    def podman_(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.podman, "--storage-driver", storage_driver(), *args],
                              capture_output=True, text=True, timeout=timeout, check=True)

    def buildah_(self, *args: str, timeout: float = 120.0,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.buildah, "--storage-driver", storage_driver(), *args],
                              capture_output=True, text=True, timeout=timeout, check=check,
                              stdin=subprocess.DEVNULL)

    def inspect(self, template: str) -> str:
        return self.podman_("image", "inspect", "--format", template,
                            self.reference).stdout.strip()

    @contextmanager
    def container(self) -> Iterator[Container]:
        """A working container of the image, removed afterwards."""
        name = self.buildah_("from", "--pull-never", self.reference).stdout.strip()
        try:
            yield Container(self, name)
        finally:
            self.buildah_("rm", name, check=False)


@dataclass(frozen=True)
class Container:
    image: Image
    name: str

    def argv(self, command: Sequence[str], *, volumes: Sequence[tuple[Path, str]] = (),
             env: dict[str, str] | None = None) -> list[str]:
        """``buildah run`` of ``command`` as the image's user, on the host's network."""
        argv = [self.image.buildah, "--storage-driver", storage_driver(), "run",
                "--isolation", "chroot", "--network", "host"]
        for source, target in volumes:
            argv += ["--volume", f"{source}:{target}:ro"]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        return [*argv, self.name, "--", *command]

    def run(self, *command: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command), capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def locate() -> Image:
    """The image built from the current tree; skips (fails under CI) when there is none."""
    podman, buildah = shutil.which("podman"), shutil.which("buildah")
    if podman is None or buildah is None:
        unavailable("podman and buildah are not installed (Debian packages podman buildah "
                    "mmdebstrap; scripts/test installs them as root)")
    assert podman is not None and buildah is not None
    check = subprocess.run([str(BUILD_SCRIPT), "--check"], capture_output=True, text=True,
                           timeout=300, check=False, cwd=REPO)
    if check.returncode != 0:
        said = check.stderr.strip().splitlines()
        unavailable("no image built from this tree: run scripts/image (scripts/test does)"
                    + (f"; {said[-1]}" if said else ""))
    return Image(check.stdout.strip(), podman, buildah)
