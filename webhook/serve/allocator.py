"""glibc's malloc, told to hand large blocks back to the system when they are freed.

glibc serves a block of 128 KiB or more with its own mmap, unmapped when freed, but it
raises that threshold to the size of each such block freed (up to 32 MiB): after the first
LIST page body (megabytes) is freed, the next ones come from the heap, and what they leave
there when freed stays in the process. With 100,000 Services in pages of 5,000 that was
about 20 MiB of RSS once synced (benchmarks/cache_scale.py: 193 against 170 MiB, ready the
same). Setting the threshold fixes it where it starts, so every large block (a page, a
large review) is mapped on its own and returned when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("edgewarden.server")

# From glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold (serve does it once, with the collector's tuning); False
    where the C library is not glibc (musl, macOS), which then keeps its own behaviour."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not hasattr(libc, "gnu_get_libc_version"):
        return False  # another C library's mallopt may not know glibc's parameters
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; large blocks keep glibc's threshold")
        return False
    return True
