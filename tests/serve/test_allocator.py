"""Large blocks go back to the system when freed (webhook/serve/allocator.py): a LIST page
body freed must not stay in the process as RSS."""

from __future__ import annotations

import ctypes.util
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's malloc only")

# Three 5 MB bodies freed under small blocks allocated after them, as a LIST's page bodies
# are freed under the records cut from them; a first one freed before raises glibc's
# threshold, as the first page does.
PROBE = textwrap.dedent("""
    import os, sys
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    if sys.argv[1] == "tuned":
        from webhook.serve.allocator import return_large_blocks
        assert return_large_blocks()
    first = b"x" * 5_000_000
    del first
    bodies = [b"x" * 5_000_000 for _ in range(3)]
    records = [b"y" * 1000 for _ in range(10)]
    held = rss()
    del bodies
    print(held - rss())
""")


def returned_bytes(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True,
                          text=True, check=True, timeout=60)
    return int(done.stdout)


def test_freed_page_bodies_go_back_to_the_system() -> None:
    assert returned_bytes("tuned") >= 14_000_000


def test_without_it_glibc_keeps_them() -> None:
    # What the tuning is for: if a glibc ever returns them on its own, it is not needed.
    assert returned_bytes("plain") < 1_000_000


def test_it_says_whether_it_could_and_may_be_asked_again() -> None:
    from webhook.serve.allocator import return_large_blocks

    assert ctypes.util.find_library("c")
    assert return_large_blocks() is True
    assert return_large_blocks() is True
