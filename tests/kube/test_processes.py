"""Children of the tests never outlive them: a stop ends the whole process group, and a
test process killed outright takes its servers with it (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .processes import ManagedProcess
from .wait import until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) no longer runs.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_stop_ends_the_process_and_what_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    server = ManagedProcess("shell", [
        "sh", "-c", f"sleep 300 & echo $! > {pids}; sleep 300"], tmp_path / "log")
    server.start()
    child = int(until(lambda: pids.exists() and pids.read_text().strip(), "the child", 10))
    assert alive(child)
    server.stop()
    assert not server.running()
    until(lambda: not alive(child), "the shell's own child to be gone", 10)


def test_a_failed_start_says_why_with_the_end_of_the_log(tmp_path: Path) -> None:
    server = ManagedProcess("failing", ["sh", "-c", "echo 'bad flag --foo'; exit 3"],
                            tmp_path / "log")
    server.start()
    until(lambda: not server.running(), "the process to exit", 10)
    with pytest.raises(RuntimeError, match=r"exited with code 3(.|\n)*bad flag --foo"):
        server.check_alive()


SERVER_THEN_HANG = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from kube.processes import ManagedProcess
server = ManagedProcess("sleeper", ["sleep", "300"], Path(sys.argv[2]) / "log")
server.start()
(Path(sys.argv[2]) / "server.pid").write_text(str(server.pid))
time.sleep(300)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_test_process_killed_outright_takes_its_servers_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    runner = subprocess.Popen([sys.executable, "-c", SERVER_THEN_HANG,
                               str(Path(__file__).parents[1]), str(tmp_path)])
    try:
        server = int(until(lambda: pid_file.exists() and pid_file.read_text(), "a server", 20))
        assert alive(server)
        runner.kill()  # no finalizer, no atexit: only the kernel can clean up now
        runner.wait(10)
        until(lambda: not alive(server), "the server to die with its parent", 10)
    finally:
        if runner.poll() is None:
            runner.kill()
