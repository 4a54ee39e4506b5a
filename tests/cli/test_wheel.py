"""The wheel works on its own: built from the package sources, installed into a fresh
virtualenv outside the repository, ``edgewarden check -f manifests.yaml`` judges with the
default policies packaged inside it.

No network: the wheel is built without build isolation (setuptools is a pinned test
dependency), installed with ``--no-index``, and its dependencies are taken from the
project's virtualenv through a ``.pth`` line (appended to sys.path after the fresh
site-packages, so ``webhook`` itself can only come from the wheel; the project's editable
install is a ``.pth`` hook that is not run from such a path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPOSED = REPO / "policies" / "fixtures" / "manifests" / "production-exposed.yaml"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtualenv with only the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so building leaves nothing behind in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "webhook", source / "webhook",
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                 "--no-build-isolation", "--no-index", "-w", str(root / "dist")], root)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (root / "dist").glob("edgewarden-*.whl")

    environment = root / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    pip = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
               "--no-index", str(wheel)], root)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               root).stdout.strip()
    (Path(site) / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return environment / "bin"


@pytest.fixture()
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the repository with a manifest and no ./policies."""
    assert REPO not in tmp_path.parents
    shutil.copy(EXPOSED, tmp_path / "manifests.yaml")
    return tmp_path


def test_the_package_comes_from_the_wheel(installed: Path, elsewhere: Path) -> None:
    found = run([str(installed / "python"), "-c", "import webhook; print(webhook.__file__)"],
                elsewhere)
    assert Path(found.stdout.strip()).is_relative_to(installed.parent), found.stdout
    assert run([str(installed / "edgewarden"), "--version"], elsewhere).stdout.startswith(
        "edgewarden ")


def test_check_outside_the_repository_uses_the_packaged_default_policies(
    installed: Path, elsewhere: Path
) -> None:
    result = run([str(installed / "edgewarden"), "check", "-f", "manifests.yaml"], elsewhere)
    assert result.returncode == 1, result.stdout + result.stderr  # the fixture's denials
    assert "using the packaged default policies" in result.stderr
    assert str(installed.parent) in result.stderr, "the set inside the fresh virtualenv"
    assert "deny-nodeport-in-production" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_exported_defaults_pass_their_suites(installed: Path, elsewhere: Path) -> None:
    edgewarden = str(installed / "edgewarden")
    exported = run([edgewarden, "policies", "export", "mine"], elsewhere)
    assert exported.returncode == 0, exported.stderr
    tested = run([edgewarden, "test", "mine"], elsewhere)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " 0 failed" in tested.stdout
