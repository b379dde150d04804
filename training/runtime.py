"""The process MXNet runs in: a Python it works on, every CPU core, a build that loads.

`prepare()` runs when the `training` package is first imported, which the scripts do before
anything else: MXNet reads OMP_NUM_THREADS once, when it is first imported, and by default uses
only half the cores (an epoch on a 2-core CPU takes half the time with all of them).
"""
import os
import sys

PYTHONS = ((3, 8), (3, 11))  # oldest and newest Python that MXNet 1.9.1's numpy<1.24 has wheels for


def check_python(version=None):
    """Exits with one line unless this Python can run MXNet 1.9.1."""
    version = tuple((version or sys.version_info)[:2])
    if not PYTHONS[0] <= version <= PYTHONS[1]:
        sys.exit("error: Python %d.%d is not supported: MXNet 1.9.1 needs numpy<1.24, which has no "
                 "wheels for Python 3.12 and newer. Use Python 3.8-3.11." % version)


def use_all_cores():
    """Lets MXNet use every core this process may run on, unless the user set OMP_NUM_THREADS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(cores or 1))


def import_mxnet():
    """Imports MXNet; exits with one line when its library cannot load."""
    try:
        import mxnet  # noqa: F401
    except OSError as e:  # mxnet-cu112 without the CUDA 11 libraries it links
        sys.exit("error: MXNet could not load its library (%s). mxnet-cu112 needs the CUDA 11 runtime "
                 "libraries and an NVIDIA driver (README, 'GPU machines'); on a machine without a GPU "
                 "install mxnet==1.9.1 instead." % e)


def prepare():
    check_python()
    use_all_cores()
    import_mxnet()
