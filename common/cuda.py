"""The CUDA 11 libraries of MXNet's GPU build, loaded before MXNet: no LD_LIBRARY_PATH needed.

mxnet-cu112's libmxnet.so links the sonames in LIBRARIES (read off the wheel with readelf -d).
NVIDIA's pip wheels (requirements.txt) put them in site-packages/nvidia/<part>/lib/, where the
system loader does not look. Loading each one first by its full path, with RTLD_GLOBAL, satisfies
libmxnet.so's links by soname. Each library is looked for in those wheel folders first, then
through the system loader (LD_LIBRARY_PATH, ldconfig: a CUDA toolkit installed system-wide). The
driver's libcuda.so.1 comes from the system only.

Standard library only: it runs before MXNet loads (runtime.prepare), and in the report even
where MXNet cannot load.
"""
import ctypes
import glob
import os
import sys
from importlib import metadata

GPU_BUILDS = ("mxnet-cu112",)  # the MXNet distributions that link CUDA 11
# (soname, what it is, the pip requirement that has it), dependencies before what needs them.
LIBRARIES = (
    ("libcudart.so.11.0", "CUDA runtime 11", "nvidia-cuda-runtime-cu11"),
    ("libcublasLt.so.11", "cuBLASLt 11", "nvidia-cublas-cu11"),
    ("libcublas.so.11", "cuBLAS 11", "nvidia-cublas-cu11"),
    ("libcudnn.so.8", "cuDNN 8", "nvidia-cudnn-cu11==8.9.6.50"),
    ("libcufft.so.10", "cuFFT 10", "nvidia-cufft-cu11"),
    ("libcurand.so.10", "cuRAND 10", "nvidia-curand-cu11"),
    ("libcusolver.so.11", "cuSOLVER 11", "nvidia-cusolver-cu11"),
    ("libnvrtc.so.11.2", "NVRTC 11.2", "nvidia-cuda-nvrtc-cu11"),
    ("libnccl.so.2", "NCCL 2", "nvidia-nccl-cu11"),
    ("libnvToolsExt.so.1", "NVTX", "nvidia-nvtx-cu11"),
)
DRIVER = "libcuda.so.1"
SYSTEM = "the system loader"  # where a library found by soname alone came from


class CudaLibraryError(Exception):
    """A library MXNet's GPU build links cannot be loaded. The message names it and the remedy."""


def gpu_build():
    """The installed MXNet GPU distribution's name, or None (the CPU build, or no MXNet)."""
    for name in GPU_BUILDS:
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            pass
    return None


def wheel_dirs(paths=None):
    """The lib/ folders of NVIDIA's pip wheels under each sys.path entry, in sys.path order."""
    found = []
    for entry in sys.path if paths is None else paths:
        found += sorted(glob.glob(os.path.join(glob.escape(entry or "."), "nvidia", "*", "lib")))
    return found


def find_library(soname, dirs):
    """The first file named soname in dirs, or None."""
    for folder in dirs:
        path = os.path.join(folder, soname)
        if os.path.isfile(path):
            return path
    return None


def _load(name):
    """(loaded?, the loader's error or None) for a path or a soname."""
    try:
        ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        return True, None
    except OSError as e:
        return False, str(e)


def preload(dirs=None, driver=DRIVER):
    """Loads every library in LIBRARIES, then the driver. Returns [(soname, where)], where is a
    path or SYSTEM. Raises CudaLibraryError at the first one that cannot be loaded."""
    dirs = wheel_dirs() if dirs is None else dirs
    loaded = []
    for soname, what, requirement in LIBRARIES:
        path = find_library(soname, dirs)
        ok, error = _load(path or soname)
        if not ok:
            where = "%s failed to load (%s)" % (path, error) if path else (
                "it is neither in the pip-installed NVIDIA libraries (%s) nor on the system "
                "loader's path" % (", ".join(dirs) or "no site-packages/nvidia/*/lib folder"))
            raise CudaLibraryError("%s (%s), which MXNet's GPU build needs: %s. Install it with "
                                   "pip install %s, or build the GPU set anew (./train.sh does, "
                                   "from requirements.txt)" % (soname, what, where, requirement))
        loaded.append((soname, path or SYSTEM))
    ok, error = _load(driver)
    if not ok:
        raise CudaLibraryError(
            "the NVIDIA driver's %s cannot be loaded (%s); MXNet's GPU build needs it even to "
            "train on the CPU. Install the NVIDIA driver (R450.80.02 or newer), or on a machine "
            "without a GPU use the CPU set: CIFAR_MXNET_BUILD=cpu ./train.sh ... "
            "(or pip install -r requirements-cpu.txt)" % (driver, error))
    loaded.append((driver, SYSTEM))
    return loaded


def report(dirs=None):
    """Lines for a bug report: the MXNet build, and each library and where it was found."""
    dirs = wheel_dirs() if dirs is None else dirs
    lines = ["MXNet build: %s" % (gpu_build() or "not a GPU build (%s)" % ", ".join(GPU_BUILDS)),
             "NVIDIA wheel folders: %s" % (", ".join(dirs) or "none")]
    for soname, what, requirement in LIBRARIES + ((DRIVER, "NVIDIA driver", "the NVIDIA driver"),):
        path = find_library(soname, dirs) if soname != DRIVER else None
        ok, error = _load(path or soname)
        where = (path or SYSTEM) if ok else "NOT LOADED (%s): install %s" % (error, requirement)
        lines.append("%-20s %-16s %s" % (soname, what, where))
    return lines

