"""Every command in README.md and docs/ runs as printed from a fresh clone, after the
README's first command (which creates and activates the virtualenv).

The docs mark each shell block (```sh, ```bash, ```console) on the line before it:

* ``<!-- runnable -->``: runs offline; ``<!-- runnable exit=N -->`` when it is meant to
  exit N (a check that finds a denial); ``needs=kubectl`` when it runs a tool that may not
  be installed (the block is left out where it is not, and the page's test says so). The
  blocks of one page run in order, in one copy of the repository, each with
  ``bash -euo pipefail``, the virtualenv's bin first on PATH.
* ``<!-- not runnable: REASON -->``: needs a cluster, Docker, a server left running...;
  the page says so where a reader sees it.

A shell block with neither marker fails the test, so no new block goes unchecked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.workspace import REPO, activated_environment, copy_repository
from webhook.offline.kustomize import cached_kubectl

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w-]*)\s*$")
SHELL = {"sh", "bash", "shell", "console"}
RUNNABLE = re.compile(
    r"^\s*<!-- runnable(?: exit=(?P<exit>\d+))?(?: needs=(?P<needs>[\w-]+))? -->\s*$")
NOT_RUNNABLE = re.compile(r"^\s*<!-- not runnable: (?P<reason>.+?) -->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    runnable: bool
    exit_code: int
    reason: str
    needs: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
            end += 1
        body = "\n".join(line[indent:] for line in lines[index + 1:end])
        before = lines[index - 1] if index else ""
        runnable = RUNNABLE.match(before)
        skipped = NOT_RUNNABLE.match(before)
        found.append(Block(
            page=page, line=index + 1, language=opening["language"], text=body,
            runnable=runnable is not None,
            exit_code=int(runnable["exit"] or 0) if runnable else 0,
            reason=skipped["reason"] if skipped else "",
            needs=(runnable["needs"] or "") if runnable else "",
        ))
        index = end + 1
    return found


ALL = [block for page in PAGES for block in blocks(page)]
SHELL_BLOCKS = [block for block in ALL if block.language in SHELL]


def test_pages_and_blocks_are_found() -> None:
    """So the tests below cannot pass by finding nothing."""
    assert {"README.md", "reports.md", "certs.md", "policies.md"} <= {p.name for p in PAGES}
    assert sum(block.runnable for block in SHELL_BLOCKS) >= 10


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.where)
def test_every_shell_block_says_whether_it_runs(block: Block) -> None:
    assert block.runnable or block.reason, (
        f"{block.where}: mark the block <!-- runnable --> or <!-- not runnable: why -->")
    if block.runnable:
        assert block.language in ("sh", "bash"), (
            f"{block.where}: a runnable block holds commands only (```sh), no prompts or output")


def test_the_readme_starts_by_creating_and_activating_the_virtualenv() -> None:
    first = next(b for b in SHELL_BLOCKS if b.page.name == "README.md")
    assert ". .venv/bin/activate" in first.text and "python3 -m venv .venv" in first.text
    assert not first.runnable, "the docs test runs inside that virtualenv already"


@pytest.mark.parametrize(
    "page", [p for p in PAGES if any(b.runnable for b in blocks(p))],
    ids=lambda p: p.name,
)
def test_runnable_blocks_run_as_printed(page: Path, tmp_path: Path) -> None:
    workspace = copy_repository(tmp_path / "clone")
    environment = activated_environment()
    # A kubectl built by scripts/kube-binaries counts as installed.
    environment["PATH"] += os.pathsep + str(cached_kubectl().parent)
    left_out = []
    for block in (b for b in blocks(page) if b.runnable):
        if block.needs and not shutil.which(block.needs, path=environment["PATH"]):
            left_out.append(f"{block.where} (no {block.needs})")
            continue
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text],
                                cwd=workspace, env=environment, capture_output=True,
                                text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert result.returncode == block.exit_code, (
            f"{block.where}: exit {result.returncode}, expected {block.exit_code}\n"
            f"{block.text}\n--- stdout\n{result.stdout[-3000:]}\n"
            f"--- stderr\n{result.stderr[-3000:]}"
        )
        assert "Traceback" not in result.stderr, f"{block.where}\n{result.stderr}"
    if left_out:
        pytest.skip("every other block ran as printed; left out: " + ", ".join(left_out))
