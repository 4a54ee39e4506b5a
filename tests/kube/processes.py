"""Child processes that never outlive the test run.

Each child runs in its own process group (so stopping it also stops anything it started)
and, on Linux, is told by the kernel to die with SIGKILL when the thread that started it
goes away (``PR_SET_PDEATHSIG``): a pytest killed with SIGKILL, whose fixture finalizers
never run, leaves nothing behind either. Every live child is also stopped at interpreter
exit. Output goes to a log file, which errors quote (the tail) to say why a start failed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 15.0

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child between fork and exec."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One long-running child (a server), started and stopped on request."""

    def __init__(self, name: str, argv: Sequence[str], log_file: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        parent = os.getpid()
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),
            )
        with _live_lock:
            _live.add(self)

    def check_alive(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        code = self._popen.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with code {code}; the end of {self.log_file}:\n"
                f"{tail(self.log_file)}"
            )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
        """Signal the whole process group, wait, then SIGKILL whatever is left."""
        popen = self._popen
        if popen is None:
            return
        try:
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, sig)
                try:
                    popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait(timeout)
            # The leader is gone; children it started in its group may not be.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
        finally:
            with _live_lock:
                _live.discard(self)

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid})"


def stop_together(processes: Sequence[ManagedProcess]) -> None:
    """Stop ``processes`` at the same time, as a rollout stops a Deployment's pods: each gets
    its signal at once and drains on its own clock (``serve`` keeps answering for its
    ``--drain-seconds`` after SIGTERM), instead of one drain after the other."""
    if len(processes) <= 1:
        for process in processes:
            process.stop()
        return
    errors: list[BaseException] = []

    def stop(process: ManagedProcess) -> None:
        try:
            process.stop()
        except BaseException as error:  # re-raised below, in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=stop, args=(process,), name=f"stop {process.name}")
               for process in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def stop_all() -> None:
    with _live_lock:
        remaining = list(_live)
    for process in remaining:
        process.stop(timeout=5.0)


atexit.register(stop_all)
