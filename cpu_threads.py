"""Give MXNet every core this process may use. Call before the first `import mxnet`.

MXNet reads OMP_NUM_THREADS once, when it is first imported, and by default uses only half the
cores; an epoch on a 2-core CPU takes half the time with all of them. A user's setting wins.
This module imports nothing heavy, so the scripts can call it first.
"""
import os


def use_all_cores():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(cores or 1))
