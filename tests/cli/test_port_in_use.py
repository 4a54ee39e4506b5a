"""A second `serve` on a busy port: one line and exit 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.cli.app import app

REPO = Path(__file__).resolve().parents[2]
EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other server listens on (as a first `serve --dev` would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        yield held.getsockname()[1]


def test_a_second_serve_dev_on_a_busy_port_prints_one_line_and_exits_2(
    busy_port: int, tmp_path: Path
) -> None:
    result = subprocess.run(
        [*EDGEWARDEN, "serve", "--dev", "--port", str(busy_port), "--dev-dir",
         str(tmp_path / "dev"), "--policies", str(REPO / "policies")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: port {busy_port} on 127.0.0.1 is in use: Address already in use")
    assert "--port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# (A busy --probe-port is the listener's own error: tests/admission/test_cli.py.)
@pytest.mark.parametrize("flag", ["--metrics-port"])
def test_a_busy_side_port_names_its_own_flag(busy_port: int, tmp_path: Path, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as free:
        free.bind(("127.0.0.1", 0))
        https_port = free.getsockname()[1]
    result = CliRunner().invoke(app, [
        "serve", "--dev", "--dev-dir", str(tmp_path / "dev"), "--port", str(https_port),
        flag, str(busy_port), "--policies", str(REPO / "policies"),
    ], catch_exceptions=False)
    assert result.exit_code == 2
    assert f"port {busy_port} on 127.0.0.1 is in use" in result.stderr
    assert f"choose another {flag}" in result.stderr
