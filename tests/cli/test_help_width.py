"""Help at 80 columns: every option name whole, values named by words, nothing wider."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import typer.main
from typer import _click
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.cli.app import app, value_word

EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]
# A Python type as Typer would show it: <list[Path]>, <str>, <bool>, <int range>.
PYTHON_TYPE = re.compile(r"<(?:list\[)?[a-zA-Z]+(?: range)?\]?>")


def commands(command: _click.Command, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], _click.Command]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
EVERY_COMMAND = list(commands(ROOT))


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path, _ in EVERY_COMMAND}
    assert {"", "serve", "check", "test", "validate", "audit", "certs generate"} <= names


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND,
                         ids=[" ".join(p) or "edgewarden" for p, _ in EVERY_COMMAND])
def test_help_at_80_columns_shows_every_option_name_whole(
    path: tuple[str, ...], command: _click.Command
) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = result.stdout
    lines = shown.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert "…" not in shown, "nothing is cut"
    names = [name for param in command.params if not getattr(param, "hidden", False)
             for name in (*param.opts, *getattr(param, "secondary_opts", ()))
             if name.startswith("--")]
    for name in [*names, "--help"]:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", shown), name
    assert not PYTHON_TYPE.search(shown), PYTHON_TYPE.search(shown)


def test_serve_help_in_an_80_column_terminal_as_the_issue_ran_it() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("NO_COLOR", None)
    result = subprocess.run([*EDGEWARDEN, "serve", "--help"], capture_output=True, text=True,
                            env=env, timeout=120, check=True)
    assert "--evaluation-budget-ms" in result.stdout
    assert "--evaluation-deadline-ms" in result.stdout
    assert "--no-reload-canary" in result.stdout
    assert "…" not in result.stdout


@pytest.mark.parametrize("columns", ["100", "110", "160"])
def test_wider_terminals_cut_nothing_either(columns: str) -> None:
    """Typer's own six columns still cut serve's names at 110: the layout is ours."""
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": columns},
                                catch_exceptions=False)
    assert "--evaluation-deadline-ms" in result.stdout and "…" not in result.stdout
    assert "PATH" in result.stdout
    assert not PYTHON_TYPE.search(result.stdout)


@pytest.mark.parametrize(("shown", "word"), [
    ("<list[Path]>", "PATH"), ("<path>", "PATH"), ("<file>", "FILE"), ("<str>", "TEXT"),
    ("<list[str]>", "TEXT"), ("<int range>", "INTEGER"), ("<float range>", "NUMBER"),
    ("<Fail|Ignore>", "Fail|Ignore"), ("FILE", "FILE"),
])
def test_python_types_become_words(shown: str, word: str) -> None:
    assert value_word(shown) == word
