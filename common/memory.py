"""Giving memory the process freed back to the system.

MXNet 1.9.1 allocates CPU memory with malloc and frees it with free (it pools memory on GPUs
only). glibc keeps freed blocks below its mmap threshold (which grows up to 32 MB as larger
blocks are freed) in its heaps, and gives heap memory back only from the top: after each switch
between training and evaluation, which re-plans the hybridized network's memory, the freed
blocks stay in the process and its resident memory grows from epoch to epoch. malloc_trim gives
every free page of the heaps back (glibc 2.8 and later).
"""
import ctypes


def return_freed_memory():
    """Gives the pages of freed memory back to the system where the C library can (glibc's
    malloc_trim; elsewhere nothing). Takes milliseconds: for once per epoch, not per batch."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process already runs on
    except (OSError, AttributeError, TypeError):  # not glibc, or no such handle (Windows)
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
