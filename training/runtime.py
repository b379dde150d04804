"""The process MXNet runs in: a Python it works on, every CPU core, the CUDA libraries of its GPU
build, and a build that loads. Each failure is one `error:` line and exit code 1.

`prepare()` runs when the `training` package is first imported, which the scripts do before
anything else: MXNet reads OMP_NUM_THREADS once, when it is first imported, and by default uses
only half the cores (an epoch on a 2-core CPU takes half the time with all of them); and the
CUDA libraries must be loaded before libmxnet.so is (training/cuda.py).
"""
import os
import sys
from importlib import metadata

PYTHONS = ((3, 8), (3, 11))  # oldest and newest Python that MXNet 1.9.1's numpy<1.24 has wheels for
NUMPY_TOO_NEW = (1, 24)  # removed np.bool and np.PZERO, which MXNet 1.9.1 uses
SETUP = ("set up with ./train.sh (or ./test.sh), which builds the project's environment for this "
         "machine, or pip install -r requirements-cpu.txt (CPU) / -r requirements.txt (GPU)")


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


def check_numpy():
    """Exits with one line when the installed numpy is too new for MXNet 1.9.1."""
    try:
        version = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        return  # MXNet's import says what is missing
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= NUMPY_TOO_NEW:
        sys.exit("error: numpy %s is installed, but MXNet 1.9.1 needs numpy < 1.24 (it uses np.bool "
                 "and np.PZERO): %s (they pin numpy 1.23.5)" % (version, SETUP))


def load_cuda_libraries():
    """For MXNet's GPU build: loads the CUDA 11 libraries it links, or exits naming the missing one."""
    from . import cuda

    if cuda.gpu_build() is None:
        return
    try:
        cuda.preload()
    except cuda.CudaLibraryError as e:
        sys.exit("error: %s" % e)


def import_mxnet():
    """Imports MXNet; exits with one line when it is missing or its library cannot load."""
    try:
        import mxnet  # noqa: F401
    except ImportError as e:
        sys.exit("error: MXNet is not installed for this Python (%s): %s" % (e, SETUP))
    except OSError as e:  # a library libmxnet.so links is missing
        sys.exit("error: MXNet could not load its library (%s). mxnet-cu112 needs the CUDA 11 runtime "
                 "libraries and an NVIDIA driver (README, 'GPU machines'); on a machine without a GPU "
                 "install mxnet==1.9.1 instead (the CPU set: CIFAR_MXNET_BUILD=cpu ./train.sh)." % e)


def prepare():
    check_python()
    use_all_cores()
    if "mxnet" not in sys.modules:  # a kvstore server re-enters here while MXNet loads
        check_numpy()
        load_cuda_libraries()
    import_mxnet()
