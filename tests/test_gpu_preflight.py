"""GPU preflight: the GPUs' names and compute capabilities read from the NVIDIA driver, and one
clear error for a GPU MXNet 1.9.1 has no code for, before any data work.

These machines have no GPU and no driver: the tests build a stand-in libcuda.so.1 that answers
the driver calls the preflight makes (cuInit, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName,
cuDeviceGetAttribute) with the GPUs listed in $STANDIN_GPUS ("NAME=MAJOR.MINOR;..."), and put
it first on LD_LIBRARY_PATH, where the loader finds the real one on a GPU machine."""
import os
import shutil
import subprocess
import sys

import pytest

from common import cuda
from helpers import REPO, run_cli_process

STANDIN_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index-th entry of $STANDIN_GPUS ("NAME=MAJOR.MINOR;..."): 1 if it exists. */
static int entry(int index, char *name, int size, int *major, int *minor) {
    const char *list = getenv("STANDIN_GPUS");
    char copy[4096], *item, *save = NULL;
    int i = 0;
    if (!list) return 0;
    snprintf(copy, sizeof copy, "%s", list);
    for (item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save), i++) {
        char *equals = strrchr(item, '=');
        if (i != index || !equals) continue;
        *equals = 0;
        if (name) snprintf(name, size, "%s", item);
        if (sscanf(equals + 1, "%d.%d", major, minor) != 2) return 0;
        return 1;
    }
    return 0;
}

static int count(void) {
    int n = 0, major, minor;
    while (entry(n, NULL, 0, &major, &minor)) n++;
    return n;
}

int cuInit(unsigned int flags) { return count() ? 0 : 100; /* CUDA_ERROR_NO_DEVICE */ }
int cuDeviceGetCount(int *n) { *n = count(); return 0; }
int cuDeviceGet(int *device, int ordinal) { *device = ordinal; return ordinal < count() ? 0 : 101; }
int cuDeviceGetName(char *name, int size, int device) {
    int major, minor;
    return entry(device, name, size, &major, &minor) ? 0 : 101;
}
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    int major, minor;
    if (!entry(device, NULL, 0, &major, &minor)) return 101;
    if (attribute == 75) { *value = major; return 0; }
    if (attribute == 76) { *value = minor; return 0; }
    return 1; /* CUDA_ERROR_INVALID_VALUE */
}
"""
H100 = "NVIDIA H100 80GB HBM3=9.0"
T4 = "Tesla T4=7.5"


@pytest.fixture(scope="module")
def driver_dir(tmp_path_factory):
    """A folder holding the stand-in libcuda.so.1, compiled with the system's C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the stand-in NVIDIA driver")
    folder = tmp_path_factory.mktemp("driver")
    (folder / "standin.c").write_text(STANDIN_DRIVER)
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(folder / cuda.DRIVER),
                    str(folder / "standin.c")], check=True)
    return folder


def with_gpus(driver_dir, gpus):
    return {"LD_LIBRARY_PATH": str(driver_dir), "STANDIN_GPUS": gpus}


@pytest.mark.parametrize("capability, runs", [
    ((3, 7), False),  # K80
    ((5, 0), True), ((5, 2), True), ((6, 0), True), ((6, 1), True), ((7, 0), True),
    ((7, 5), True),  # T4, RTX 20xx: sm_70 code
    ((8, 0), True), ((8, 6), True),
    ((8, 9), True),  # L4, RTX 40xx: sm_86 code
    ((9, 0), False),  # H100, H200
    ((10, 0), False), ((12, 0), False),  # B200, RTX 50xx
])
def test_which_compute_capabilities_the_gpu_build_runs_on(capability, runs):
    assert cuda.runs_on(capability) is runs


def test_the_driver_gives_each_gpus_name_and_compute_capability(driver_dir, monkeypatch):
    driver = str(driver_dir / cuda.DRIVER)
    monkeypatch.setenv("STANDIN_GPUS", "%s;%s" % (T4, H100))
    assert cuda.gpus(driver) == [(0, "Tesla T4", (7, 5)), (1, "NVIDIA H100 80GB HBM3", (9, 0))]
    monkeypatch.setenv("STANDIN_GPUS", "")
    assert cuda.gpus(driver) == []  # the driver's "no device"
    assert cuda.gpus(str(driver_dir / "missing.so")) is None  # no driver: MXNet's count decides


def test_preflight_refuses_only_the_gpus_asked_for_that_mxnet_cannot_run(driver_dir, monkeypatch):
    driver = str(driver_dir / cuda.DRIVER)
    monkeypatch.setenv("STANDIN_GPUS", "%s;%s" % (T4, H100))
    cuda.preflight([0], driver)
    cuda.preflight([0, 5], driver)  # GPU 5 does not exist: MXNet's count says so
    with pytest.raises(cuda.GpuError, match=r"GPU 1 is an NVIDIA H100 80GB HBM3 of compute capability 9.0 \(sm_90\)"):
        cuda.preflight([0, 1], driver)


def one_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_training_on_an_h100_is_one_error_line_before_any_data_work(driver_dir, tmp_path):
    # The data folder does not exist: the GPU is refused first.
    result = run_cli_process("--num-gpus", "1", "--data-dir", str(tmp_path / "no-data"),
                             env=with_gpus(driver_dir, H100))
    line = one_error_line(result)
    assert result.returncode == 1 and result.stdout == ""
    assert line.startswith("error: GPU 0 is an NVIDIA H100 80GB HBM3 of compute capability 9.0 (sm_90)")
    assert "code only for sm_50, sm_60, sm_70, sm_80, sm_86" in line
    assert "--num-gpus 0" in line and "A100" in line
    assert not (tmp_path / "no-data").exists()


def test_the_gpu_chosen_by_id_is_the_one_checked(driver_dir, tmp_path):
    gpus = with_gpus(driver_dir, "%s;%s" % (T4, H100))
    refused = run_cli_process("--gpus", "1", "--data-dir", str(tmp_path), env=gpus)
    assert refused.returncode == 1 and "GPU 1 is an NVIDIA H100" in one_error_line(refused)
    # The T4 passes the preflight; this CPU build of MXNet then sees no GPU (a usage error).
    passed = run_cli_process("--gpus", "0", "--data-dir", str(tmp_path), env=gpus)
    assert passed.returncode == 2 and "MXNet sees 0" in passed.stderr and "H100" not in passed.stderr


def test_predicting_on_an_h100_is_one_error_line(driver_dir, tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, "predict.py"), str(tmp_path / "model"),
                             "--data-dir", str(tmp_path), "--num-gpus", "1"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, **with_gpus(driver_dir, H100)))
    assert result.returncode == 1 and "GPU 0 is an NVIDIA H100" in one_error_line(result)


def test_the_gpu_report_lists_every_gpu_with_its_capability_and_whether_mxnet_runs_on_it(driver_dir):
    result = subprocess.run([sys.executable, "-m", "tools.gpu_report"], capture_output=True, text=True,
                            cwd=REPO, timeout=120,
                            env=dict(os.environ, **with_gpus(driver_dir, "%s;%s;%s" % (T4, H100, "NVIDIA L4=8.9"))))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "GPUs the driver lists: 3; MXNet 1.9.1's GPU build has code for sm_50, sm_60, sm_70, sm_80, sm_86" in lines
    assert "GPU 0: Tesla T4, compute capability 7.5: MXNet runs on it" in lines
    assert "GPU 1: NVIDIA H100 80GB HBM3, compute capability 9.0: MXNet CANNOT run on it (no sm_90 code)" in lines
    assert "GPU 2: NVIDIA L4, compute capability 8.9: MXNet runs on it" in lines


def test_the_cudnn_warning_is_quieted_only_for_the_pinned_cudnn_wheel():
    pins = [line.split("#")[0].strip() for line in open(os.path.join(REPO, "requirements.txt"))]
    assert "nvidia-cudnn-cu11==" + cuda.CUDNN_PINNED in pins
    wheel = "/venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.8"
    loaded = [("libcudart.so.11.0", "/x/libcudart.so.11.0"), ("libcudnn.so.8", wheel)]
    assert cuda.quiet_cudnn_check(loaded, cuda.CUDNN_PINNED)
    assert not cuda.quiet_cudnn_check(loaded, "8.6.0.163")  # another cuDNN wheel
    assert not cuda.quiet_cudnn_check([("libcudnn.so.8", cuda.SYSTEM)], cuda.CUDNN_PINNED)  # a system cuDNN
    assert not cuda.quiet_cudnn_check([("libcudnn.so.8", "/usr/local/cuda/lib64/libcudnn.so.8")], cuda.CUDNN_PINNED)
    assert not cuda.quiet_cudnn_check([], None)
