"""Children of the tests never outlive them: a stop ends the whole process group, and a
test process killed outright takes its servers with it (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .processes import ManagedProcess, stop_together
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


# A server that drains on SIGTERM: it says it got the signal, then waits (bounded: only so
# that a failing test cannot hang) until every sibling has said so too, and writes whether
# they all had before it exits.
DRAINS_WITH_SIBLINGS = """
trap 'touch "$DIR/term-$NAME"; n=0
      while [ "$(ls "$DIR" | grep -c "^term-")" -lt 3 ] && [ $n -lt 150 ]; do
        sleep 0.1; n=$((n + 1)); done
      if [ $n -lt 150 ]; then touch "$DIR/together-$NAME"; fi; exit 0' TERM
touch "$DIR/ready-$NAME"
while :; do sleep 0.1; done
"""


def test_stop_together_signals_every_process_before_waiting_for_any(tmp_path: Path) -> None:
    signals = tmp_path / "signals"
    signals.mkdir()
    servers = [ManagedProcess(f"drain {name}", ["sh", "-c", DRAINS_WITH_SIBLINGS],
                              tmp_path / f"{name}.log",
                              env={**os.environ, "DIR": str(signals), "NAME": name})
               for name in ("a", "b", "c")]
    for server in servers:
        server.start()
    # (A signal before the trap is set would end a server at once, without its file.)
    until(lambda: len(list(signals.glob("ready-*"))) == 3, "the servers' traps", 10)
    stop_together(servers)
    assert not any(server.running() for server in servers)
    # Stopped one after the other, the first would have drained alone (no "together-a").
    assert sorted(path.name for path in signals.iterdir() if path.name.startswith("together-")) \
        == ["together-a", "together-b", "together-c"]
