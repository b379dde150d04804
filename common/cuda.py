"""The CUDA 11 libraries of MXNet's GPU build, loaded before MXNet: no LD_LIBRARY_PATH needed.

mxnet-cu112's libmxnet.so links the sonames in LIBRARIES (read off the wheel with readelf -d).
NVIDIA's pip wheels (requirements.txt) put them in site-packages/nvidia/<part>/lib/, where the
system loader does not look. Loading each one first by its full path, with RTLD_GLOBAL, satisfies
libmxnet.so's links by soname. Each library is looked for in those wheel folders first, then
through the system loader (LD_LIBRARY_PATH, ldconfig: a CUDA toolkit installed system-wide). The
driver's libcuda.so.1 comes from the system only.

The GPUs themselves are read from the driver (gpus): their names and compute capabilities. The
GPU build holds machine code for the architectures in ARCHITECTURES only and no PTX that the
driver could compile for others, so on any other GPU its first kernel would fail deep inside
MXNet; preflight() says so in one line before MXNet touches a GPU.

Standard library only: it runs before MXNet loads (runtime.prepare), and in the report even
where MXNet cannot load.
"""
import ctypes
import glob
import os
import sys
from importlib import metadata

from .cli import UserError

GPU_BUILDS = ("mxnet-cu112",)  # the MXNet distributions that link CUDA 11
CUDNN_PINNED = "8.9.6.50"  # requirements.txt's nvidia-cudnn-cu11 (MXNet 1.9.1 was built against 8.1)
# (soname, what it is, the pip requirement that has it), dependencies before what needs them.
LIBRARIES = (
    ("libcudart.so.11.0", "CUDA runtime 11", "nvidia-cuda-runtime-cu11"),
    ("libcublasLt.so.11", "cuBLASLt 11", "nvidia-cublas-cu11"),
    ("libcublas.so.11", "cuBLAS 11", "nvidia-cublas-cu11"),
    ("libcudnn.so.8", "cuDNN 8", "nvidia-cudnn-cu11==" + CUDNN_PINNED),
    ("libcufft.so.10", "cuFFT 10", "nvidia-cufft-cu11"),
    ("libcurand.so.10", "cuRAND 10", "nvidia-curand-cu11"),
    ("libcusolver.so.11", "cuSOLVER 11", "nvidia-cusolver-cu11"),
    ("libnvrtc.so.11.2", "NVRTC 11.2", "nvidia-cuda-nvrtc-cu11"),
    ("libnccl.so.2", "NCCL 2", "nvidia-nccl-cu11"),
    ("libnvToolsExt.so.1", "NVTX", "nvidia-nvtx-cu11"),
)
DRIVER = "libcuda.so.1"
SYSTEM = "the system loader"  # where a library found by soname alone came from
# The compute capabilities mxnet-cu112 1.9.1's libmxnet.so has machine code for (cuobjdump
# --list-elf; no PTX: --list-ptx lists none), as MXNet's config/distribution/linux_cu112.cmake
# builds it. A GPU runs code of its own major version and a minor version up to its own.
ARCHITECTURES = ((5, 0), (6, 0), (7, 0), (8, 0), (8, 6))
# Driver API attributes and results (cuda.h)
_CU_COMPUTE_CAPABILITY_MAJOR, _CU_COMPUTE_CAPABILITY_MINOR = 75, 76
_CUDA_ERROR_NO_DEVICE = 100


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
    return lines + gpu_report()



# ----------------------------------------------------------------------------------------------
# The GPUs, as the driver sees them

class GpuError(UserError):
    """A GPU asked for that this MXNet cannot run on. The message names it and what to do."""


def runs_on(capability, architectures=ARCHITECTURES):
    """Whether code for one of the architectures runs on a GPU of this compute capability: the
    same major version and a minor version no higher (sm_86 code runs on 8.9, not on 9.0)."""
    return any(major == capability[0] and minor <= capability[1] for major, minor in architectures)


def sm(capability):
    return "sm_%d%d" % capability


def gpus(driver=DRIVER):
    """[(index, name, (major, minor))] of every GPU the driver shows this process (honouring
    CUDA_VISIBLE_DEVICES, as MXNet's ids do); None when there is no driver to ask. Raises
    GpuError when the driver loads but fails."""
    try:
        lib = ctypes.CDLL(driver)
    except OSError:
        return None

    def call(function, *args):
        result = getattr(lib, function)(*args)
        if result:
            raise GpuError("the NVIDIA driver's %s failed with CUDA error %d: check the driver "
                           "with nvidia-smi" % (function, result))

    result = lib.cuInit(0)
    if result == _CUDA_ERROR_NO_DEVICE:
        return []
    if result:
        raise GpuError("the NVIDIA driver does not start (cuInit: CUDA error %d): check it with "
                       "nvidia-smi" % result)
    count = ctypes.c_int()
    call("cuDeviceGetCount", ctypes.byref(count))
    found = []
    for index in range(count.value):
        device, name = ctypes.c_int(), ctypes.create_string_buffer(256)
        major, minor = ctypes.c_int(), ctypes.c_int()
        call("cuDeviceGet", ctypes.byref(device), index)
        call("cuDeviceGetName", name, len(name), device)
        call("cuDeviceGetAttribute", ctypes.byref(major), _CU_COMPUTE_CAPABILITY_MAJOR, device)
        call("cuDeviceGetAttribute", ctypes.byref(minor), _CU_COMPUTE_CAPABILITY_MINOR, device)
        found.append((index, name.value.decode(errors="replace"), (major.value, minor.value)))
    return found


def preflight(ids, driver=DRIVER):
    """Before MXNet runs anything on a GPU: raises GpuError naming the first of the GPU ids asked
    for that this MXNet has no code for. Ids the driver does not list are left to MXNet's count
    (devices.contexts), which says how many there are."""
    listed = {index: (name, capability) for index, name, capability in gpus(driver) or ()}
    for i in ids:
        if i in listed and not runs_on(listed[i][1]):
            name, capability = listed[i]
            raise GpuError(
                "GPU %d is an %s of compute capability %d.%d (%s), and MXNet 1.9.1's GPU build "
                "(mxnet-cu112) has code only for %s, with no PTX to compile for others: it cannot "
                "run on this GPU, and no MXNet release can. Train on the CPU (--num-gpus 0, or the "
                "CPU set: CIFAR_MXNET_BUILD=cpu ./train.sh) or on a GPU of those architectures "
                "(V100, T4, A100, A10, L4, RTX 20xx-40xx; docs/setup-and-gpus.md)"
                % (i, name, capability[0], capability[1], sm(capability),
                   ", ".join(map(sm, ARCHITECTURES))))


def gpu_report(driver=DRIVER):
    """Lines for the report: every GPU with its capability and whether this MXNet runs on it."""
    try:
        found = gpus(driver)
    except GpuError as e:
        return ["GPUs: %s" % e]
    if found is None:
        return ["GPUs: no NVIDIA driver (%s) to ask" % driver]
    lines = ["GPUs the driver lists: %d; MXNet 1.9.1's GPU build has code for %s"
             % (len(found), ", ".join(map(sm, ARCHITECTURES)))]
    for index, name, capability in found:
        lines.append("GPU %d: %s, compute capability %d.%d: %s" % (
            index, name, capability[0], capability[1],
            "MXNet runs on it" if runs_on(capability) else "MXNet CANNOT run on it (no %s code)" % sm(capability)))
    return lines


def quiet_cudnn_check(loaded, cudnn_version):
    """Whether MXNet's start-up warning "cuDNN lib mismatch: linked-against version 8906 !=
    compiled-against version 8101" may be silenced (MXNET_CUDNN_LIB_CHECKING=0): only when the
    cuDNN loaded (preload's list) is the pinned wheel's, a cuDNN 8 that keeps the API of the 8.1
    MXNet was built with; any other cuDNN keeps the warning. cudnn_version: the installed
    nvidia-cudnn-cu11's version, or None."""
    where = dict(loaded).get("libcudnn.so.8")
    return (cudnn_version == CUDNN_PINNED and where not in (None, SYSTEM)
            and os.sep + os.path.join("nvidia", "cudnn", "lib", "libcudnn.so.8") in where)
