"""Every command's ``--help`` ends with examples, and every example that can run offline runs
as printed from a checkout, exiting as its comment says (webhook/cli/examples.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.docs.workspace import activated_environment, copy_repository
from webhook.cli.app import app
from webhook.offline.helm import cached_helm
from webhook.offline.kustomize import cached_kubectl

EXAMPLE = re.compile(r"^(?:# (?P<comment>.*)\n)?\$ (?P<command>.+)$", re.MULTILINE)
NEVER_OFFLINE = ("needs a cluster", "until Ctrl-C", "needs a git checkout")
TOOL = re.compile(r"\(needs (kubectl|helm)\)")


@dataclass(frozen=True)
class Example:
    command_path: tuple[str, ...]
    line: str
    comment: str

    @property
    def expected_exit(self) -> int:
        found = re.search(r"\bexit (\d+)", self.comment)
        return int(found.group(1)) if found else 0


def command_paths() -> Iterator[tuple[tuple[str, ...], str]]:
    """Every command and group as (path, epilog), e.g. (("certs", "generate"), "..."); the
    application itself is ()."""

    def walk(command, path: tuple[str, ...]):  # type: ignore[no-untyped-def]
        yield path, command.epilog or ""
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(get_command(app), ())


COMMANDS = dict(command_paths())
EXAMPLES = [
    Example(path, found["command"], found["comment"] or "")
    for path, epilog in COMMANDS.items()
    for found in EXAMPLE.finditer(epilog)
]
OFFLINE = [e for e in EXAMPLES if not any(marker in e.comment for marker in NEVER_OFFLINE)]


def test_the_commands_are_all_found() -> None:
    """So the tests below cannot pass by finding nothing to check."""
    assert {"serve", "check", "audit", "report", "quota", "validate", "test", "version",
            "webhook-config"} <= {path[-1] for path in COMMANDS if path}
    assert ("certs", "generate") in COMMANDS and ("policies", "export") in COMMANDS
    assert () in COMMANDS and ("certs",) in COMMANDS
    assert len(OFFLINE) >= 20


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: "-".join(p) or "edgewarden")
def test_help_ends_with_examples(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    examples = [e for e in EXAMPLES if e.command_path == path]
    assert examples, f"`edgewarden {' '.join(path)} --help` has no examples"
    assert "Examples:" in result.output
    for example in examples:
        assert f"$ {example.line}" in result.output


def _tool_missing(example: Example) -> str | None:
    needed = TOOL.search(example.comment)
    if needed is None:
        return None
    tool = needed.group(1)
    if shutil.which(tool) or (tool == "kubectl" and cached_kubectl().is_file()) \
            or (tool == "helm" and cached_helm().is_file()):
        return None
    return f"{tool} is not installed"


@pytest.mark.parametrize(
    "example", OFFLINE,
    ids=[f"{'-'.join(e.command_path) or 'edgewarden'}:{e.line[:60]}" for e in OFFLINE],
)
def test_example_runs_as_printed(example: Example, tmp_path: Path) -> None:
    missing = _tool_missing(example)
    if missing:
        pytest.skip(f"{missing}: {example.line}")
    workspace = copy_repository(tmp_path / "checkout")
    environment = activated_environment()
    # A kubectl built by scripts/kube-binaries counts as installed.
    environment["PATH"] += os.pathsep + str(cached_kubectl().parent)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", example.line], cwd=workspace,
                            env=environment, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == example.expected_exit, (
        f"$ {example.line}\nexit {result.returncode}, expected {example.expected_exit}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr
