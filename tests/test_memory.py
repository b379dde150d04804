"""common/memory.py: freed memory goes back to the system (in a process of its own, whose
allocator starts from a known state)."""
import subprocess
import sys

import pytest

from helpers import REPO

# Frees 200 blocks of 1 MB that glibc keeps in its heap (a freed 16 MB block first raises its mmap
# threshold above them; a block of 200 KB allocated after each, and kept, stands between them and
# the heap's top, so that free() alone gives nothing back), then prints the resident memory (MB)
# before and after return_freed_memory(), and what it returned.
FRAGMENTED_HEAP = """
import ctypes, sys
sys.path.insert(0, %r)
from common.memory import return_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
big = libc.malloc(16 << 20); ctypes.memset(big, 1, 16 << 20); libc.free(big)
blocks, kept = [], []
for _ in range(200):
    blocks.append(libc.malloc(1 << 20))
    ctypes.memset(blocks[-1], 1, 1 << 20)
    kept.append(libc.malloc(200 << 10))
for block in blocks:
    libc.free(block)
before = rss()
returned = return_freed_memory()
print(before, rss(), returned)
""" % REPO


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap on Linux")
def test_freed_heap_memory_goes_back_to_the_system():
    result = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    before, after, returned = result.stdout.split()
    assert returned == "True"
    assert float(before) - float(after) > 150  # of the 200 MB freed
