"""Long offline work shows a progress bar on stderr, only when a person watches a terminal:
never into a pipe, a file or a CI log, and never mixed into the report on stdout."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from webhook.offline.manifests import Manifest
from webhook.offline.scan import audit_objects, check_manifests
from webhook.policy.load.loader import load_policies

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]


def services(count: int, namespace: str = "shop") -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": f"svc-{i}", "namespace": namespace},
         "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
        for i in range(count)
    ]


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state.yaml"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    path.write_text(yaml.safe_dump_all([namespace, *services(40)]))
    return path


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end of the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def run_with_terminal_stderr(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal (stdout a pipe): (code, out, tty)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([*EDGEWARDEN, *args], stdout=subprocess.PIPE, stderr=terminal,
                               stdin=subprocess.DEVNULL, env=env, cwd=REPO)
    os.close(terminal)
    # Read the terminal while the command runs: a full pseudo-terminal would block it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = pool.submit(_read_all, controller)
        stdout, _ = process.communicate(timeout=120)
        text = seen.result(timeout=60)
    os.close(controller)
    return process.returncode, stdout.decode(), text


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "FORCE_COLOR")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "120", **extra}


def test_audit_shows_a_bar_on_a_terminal_and_keeps_stdout_clean(state: Path) -> None:
    code, stdout, terminal = run_with_terminal_stderr(
        "audit", "--cluster-state", str(state), "--policies", str(POLICIES), "-o", "json",
        env=environment())
    assert code == 0
    assert "judging 40 objects" in terminal
    assert json.loads(stdout)["summary"]["objects"] == 40


def test_no_bar_in_ci_even_on_a_terminal(state: Path) -> None:
    _, _, terminal = run_with_terminal_stderr(
        "audit", "--cluster-state", str(state), "--policies", str(POLICIES), "-o", "json",
        env=environment(CI="true"))
    assert "judging" not in terminal


def test_no_bar_into_a_pipe(state: Path) -> None:
    result = subprocess.run(
        [*EDGEWARDEN, "audit", "--cluster-state", str(state), "--policies", str(POLICIES)],
        capture_output=True, text=True, env=environment(FORCE_COLOR="1"), timeout=120, cwd=REPO)
    assert result.returncode == 0
    assert "judging" not in result.stderr + result.stdout


def test_a_large_check_shows_a_bar_and_a_small_one_does_not(tmp_path: Path) -> None:
    large = tmp_path / "large.yaml"
    large.write_text(yaml.safe_dump_all(services(600)))
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump_all(services(3)))
    for manifest, shown in ((large, True), (small, False)):
        code, _, terminal = run_with_terminal_stderr(
            "check", "-f", str(manifest), "--policies", str(POLICIES), "-o", "json",
            "--assume-unlabelled", env=environment())
        assert code == 0
        assert ("judging 600 objects" in terminal) is shown, terminal
        if not shown:
            assert "\x1b[" not in terminal, "a small check draws nothing at all"


class Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.steps: dict[str, int] = {}

    def begin(self, description: str, total: int | None = None) -> None:
        self.stages.append((description, total))
        self.steps[description] = 0

    def advance(self, steps: int = 1) -> None:
        self.steps[self.stages[-1][0]] += steps

    def judged(self) -> Iterator[tuple[int | None, int]]:
        for description, total in self.stages:
            if description.startswith("judging"):
                yield total, self.steps[description]


def test_scans_report_every_object_they_judge() -> None:
    policies = load_policies(POLICIES)
    objects = [Manifest(obj, None) for obj in services(25)]
    for scan in (audit_objects, check_manifests):
        recorder = Recorder()
        scan(objects, policies, progress=recorder)
        assert list(recorder.judged()) == [(25, 25)], scan.__name__
