"""The process before MXNet loads: the CUDA 11 libraries of MXNet's GPU build (on library folders
the tests build: these machines have no GPU and no NVIDIA driver), and one clear line for a
missing MXNet or a numpy too new for it."""
import ctypes
import os
import shutil
import subprocess
import sys

import pytest

from helpers import REPO
from common import cuda

WHEEL_FOLDERS = {  # soname -> the folder NVIDIA's pip wheel puts it in, under site-packages/nvidia
    "libcudart.so.11.0": "cuda_runtime", "libcublasLt.so.11": "cublas", "libcublas.so.11": "cublas",
    "libcudnn.so.8": "cudnn", "libcufft.so.10": "cufft", "libcurand.so.10": "curand",
    "libcusolver.so.11": "cusolver", "libnvrtc.so.11.2": "cuda_nvrtc", "libnccl.so.2": "nccl",
    "libnvToolsExt.so.1": "nvtx",
}


def driver_present():
    try:
        ctypes.CDLL(cuda.DRIVER)
        return True
    except OSError:
        return False


no_driver = pytest.mark.skipif(driver_present(), reason="this machine has an NVIDIA driver")


def real_shared_object():
    """A genuine ELF shared object (one of Python's own extension modules) to stand in for each
    CUDA library: the loader really loads it."""
    import _ctypes

    return _ctypes.__file__


def wheel_tree(site, skip=(), damaged=()):
    """site/nvidia/<part>/lib/<soname> for every library, as pip lays NVIDIA's wheels out."""
    for soname, part in WHEEL_FOLDERS.items():
        if soname in skip:
            continue
        folder = os.path.join(site, "nvidia", part, "lib")
        os.makedirs(folder, exist_ok=True)
        if soname in damaged:
            with open(os.path.join(folder, soname), "wb") as f:
                f.write(b"not a shared object " * 256)
        else:
            shutil.copy(real_shared_object(), os.path.join(folder, soname))
    return str(site)


def test_the_table_covers_every_cuda_library_libmxnet_links():
    # mxnet-cu112 1.9.1's libmxnet.so, readelf -d: every NEEDED library that is not the C/C++
    # runtime, OpenBLAS (shipped in the wheel) or the driver.
    needed = {"libcudnn.so.8", "libnccl.so.2", "libcudart.so.11.0", "libcufft.so.10", "libcublas.so.11",
              "libcusolver.so.11", "libcurand.so.10", "libnvrtc.so.11.2", "libnvToolsExt.so.1"}
    assert needed <= {soname for soname, _, _ in cuda.LIBRARIES} == set(WHEEL_FOLDERS)


def test_the_wheel_folders_are_found_under_each_path_entry_and_searched_in_order(tmp_path):
    first = wheel_tree(tmp_path / "first")
    second = wheel_tree(tmp_path / "second", skip=["libcudnn.so.8"])
    dirs = cuda.wheel_dirs([second, first])
    assert dirs[:8] == sorted(os.path.join(second, "nvidia", p, "lib") for p in set(WHEEL_FOLDERS.values()) - {"cudnn"})
    assert len(dirs) == 17
    assert cuda.find_library("libcufft.so.10", dirs) == os.path.join(second, "nvidia", "cufft", "lib", "libcufft.so.10")
    assert cuda.find_library("libcudnn.so.8", dirs) == os.path.join(first, "nvidia", "cudnn", "lib", "libcudnn.so.8")
    assert cuda.find_library("libcuda.so.1", dirs) is None


def test_every_library_is_loaded_from_the_wheels_before_the_driver(tmp_path):
    dirs = cuda.wheel_dirs([wheel_tree(tmp_path)])
    loaded = cuda.preload(dirs, driver=real_shared_object())  # a stand-in driver that loads
    assert [soname for soname, _ in loaded] == [s for s, _, _ in cuda.LIBRARIES] + [real_shared_object()]
    for soname, where in loaded[:-1]:
        assert where == os.path.join(str(tmp_path), "nvidia", WHEEL_FOLDERS[soname], "lib", soname)


@no_driver
def test_without_the_driver_the_error_names_it_and_the_cpu_set(tmp_path):
    with pytest.raises(cuda.CudaLibraryError) as error:
        cuda.preload(cuda.wheel_dirs([wheel_tree(tmp_path)]))
    message = str(error.value)
    assert message.startswith("the NVIDIA driver's libcuda.so.1 cannot be loaded (libcuda.so.1: cannot open")
    assert "R450.80.02" in message and "CIFAR_MXNET_BUILD=cpu ./train.sh" in message


def test_a_missing_library_is_named_with_the_wheel_that_has_it(tmp_path):
    dirs = cuda.wheel_dirs([wheel_tree(tmp_path, skip=["libcudnn.so.8"])])
    with pytest.raises(cuda.CudaLibraryError) as error:
        cuda.preload(dirs, driver=real_shared_object())
    assert str(error.value).startswith(
        "libcudnn.so.8 (cuDNN 8), which MXNet's GPU build needs: it is neither in the pip-installed "
        "NVIDIA libraries (%s) nor on the system loader's path. Install it with pip install "
        "nvidia-cudnn-cu11==8.9.6.50" % ", ".join(dirs))


def test_a_damaged_library_is_named_with_the_loaders_reason(tmp_path):
    dirs = cuda.wheel_dirs([wheel_tree(tmp_path, damaged=["libcufft.so.10"])])
    with pytest.raises(cuda.CudaLibraryError, match=r"^libcufft.so.10 \(cuFFT 10\), which MXNet's GPU build "
                       r"needs: .*libcufft.so.10 failed to load \(.*invalid ELF header"):
        cuda.preload(dirs, driver=real_shared_object())


def test_a_library_not_in_the_wheels_is_taken_from_the_system_loader_after_them(tmp_path):
    # LD_LIBRARY_PATH is read when a process starts: a fresh interpreter, with NCCL only on the
    # system path and cuDNN in both places (the wheel's copy wins).
    system = tmp_path / "system"
    system.mkdir()
    for soname in ("libnccl.so.2", "libcudnn.so.8"):
        shutil.copy(real_shared_object(), system / soname)
    site = wheel_tree(tmp_path / "site", skip=["libnccl.so.2"])
    code = ("import sys; sys.path.insert(0, %r); from common import cuda\n"
            "for soname, where in cuda.preload(cuda.wheel_dirs([%r]), driver=%r): print(soname, where)"
            % (REPO, site, real_shared_object()))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, LD_LIBRARY_PATH=str(system)))
    assert result.returncode == 0, result.stderr
    where = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert where["libnccl.so.2"] == cuda.SYSTEM
    assert where["libcudnn.so.8"] == os.path.join(site, "nvidia", "cudnn", "lib", "libcudnn.so.8")


def fake_gpu_build(site):
    """Makes site look like an environment of the GPU set: mxnet-cu112's metadata and the wheels."""
    info = os.path.join(site, "mxnet_cu112-1.9.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: mxnet-cu112\nVersion: 1.9.1\n")
    return site


def run_script(*args, env=None, python_flags=()):
    return subprocess.run([sys.executable, *python_flags, os.path.join(REPO, "train_cifar10.py"), *args],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, COMET_DISABLE="1", **(env or {})))


def assert_one_error_line(result, text):
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("error:") == 1 and text in result.stderr, result.stderr


@no_driver
def test_the_gpu_build_without_a_driver_stops_train_cifar10_with_the_driver_line(tmp_path):
    site = fake_gpu_build(wheel_tree(tmp_path / "site"))
    result = run_script("--num-gpus", "1", env={"PYTHONPATH": site})
    assert_one_error_line(result, "error: the NVIDIA driver's libcuda.so.1 cannot be loaded")


def test_the_gpu_build_without_cudnn_stops_train_cifar10_naming_it(tmp_path):
    site = fake_gpu_build(wheel_tree(tmp_path / "site", skip=["libcudnn.so.8"]))
    result = run_script("--help", env={"PYTHONPATH": site})
    assert_one_error_line(result, "error: libcudnn.so.8 (cuDNN 8), which MXNet's GPU build needs")
    assert "pip install nvidia-cudnn-cu11==8.9.6.50" in result.stderr


def test_a_numpy_too_new_for_mxnet_is_one_line_naming_the_setup(tmp_path):
    info = tmp_path / "numpy-1.26.4.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n")
    result = run_script("--help", env={"PYTHONPATH": str(tmp_path)})
    assert_one_error_line(result, "error: numpy 1.26.4 is installed, but MXNet 1.9.1 needs numpy < 1.24")
    assert "./train.sh" in result.stderr


def test_a_python_without_mxnet_is_one_line_naming_the_setup():
    # -S: no site-packages, as in a fresh Python where nothing was installed yet.
    result = run_script("--help", python_flags=["-S"])
    assert_one_error_line(result, "error: MXNet is not installed for this Python (No module named 'mxnet')")
    assert "set up with ./train.sh" in result.stderr


@no_driver
def test_the_gpu_report_goes_on_past_a_missing_library_and_names_each_one(tmp_path):
    site = fake_gpu_build(wheel_tree(tmp_path / "site", skip=["libcudnn.so.8"]))
    result = subprocess.run([sys.executable, "-m", "tools.gpu_report"], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env=dict(os.environ, PYTHONPATH=site))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if line.startswith("lib"))
    assert set(lines) == set(WHEEL_FOLDERS) | {"libcuda.so.1"}
    assert lines["libcufft.so.10"].split()[-1] == os.path.join(site, "nvidia", "cufft", "lib", "libcufft.so.10")
    assert "NOT LOADED" in lines["libcudnn.so.8"] and "install nvidia-cudnn-cu11==8.9.6.50" in lines["libcudnn.so.8"]
    assert "NOT LOADED" in lines["libcuda.so.1"]
    assert result.stdout.startswith("Python 3.") and "MXNet build: mxnet-cu112" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("MXNet ")  # its view, or why it did not load
