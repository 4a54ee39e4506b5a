"""A child process's merged output, read by a thread as it comes (a select() on the pipe
would miss lines already buffered by the reader)."""

from __future__ import annotations

import re
import subprocess
import threading

from .polling import eventually


class ProcessOutput:
    def __init__(self, process: subprocess.Popen[str], *, timeout: float = 30.0) -> None:
        self.text = ""
        self.timeout = timeout
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self.text += line

    def search(self, pattern: str) -> re.Match[str] | None:
        with self._lock:
            return re.search(pattern, self.text)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern``, once the output has it."""
        return eventually(lambda: self.search(pattern), timeout=self.timeout, interval=0.05,
                          what=lambda: f"{pattern!r} in the output:\n{self.text}")
