"""What the Dockerfile's trimming relies on, checked on the sources (no image needed): the
image drops ``kubernetes/aio`` (the asyncio copy of the generated client) and ships the
generated ``kubernetes.client`` compiled only, so edgewarden must never import the former
nor read the latter's source."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes
import pytest

from .images import BUILD_SCRIPT, REPO

PACKAGE = REPO / "webhook"
DROPPED = ("kubernetes.aio", "aiohttp")
# Only a file that names one of them can import it (the generated client is 75 MB of source:
# parsing every file would take half a minute).
MENTION = re.compile(rb"\baio(?:http)?\b")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_edgewarden_never_imports_what_the_image_drops() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20, "the package's sources are not where the test looks"
    offending = {
        str(path.relative_to(REPO)): sorted(name for name in imported_modules(path)
                                            if name.startswith(DROPPED))
        for path in sources
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_kubernetes_client_imports_nothing_of_its_aio_copy() -> None:
    """Outside kubernetes/aio, the installed client never imports it or aiohttp (so the
    image can drop them); and the copy is there to drop (the Dockerfile's rm is no no-op)."""
    root = Path(kubernetes.__file__).parent
    assert (root / "aio").is_dir()
    sources = [p for p in root.rglob("*.py") if "aio" not in p.relative_to(root).parts]
    assert len(sources) > 100
    mentioning = [p for p in sources if MENTION.search(p.read_bytes())]
    assert not [str(p.relative_to(root)) for p in mentioning
                if any(n.startswith(DROPPED) for n in imported_modules(p))]


def test_scripts_image_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    result = subprocess.run(["shellcheck", str(BUILD_SCRIPT)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout
