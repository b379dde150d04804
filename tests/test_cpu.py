"""The CPU and its AMX units (common/cpu.py): the decision, with the CPU's flags, the environment
and the kernel's answer given to it; where this CPU has AMX, real processes whose oneDNN runs AMX
kernels, whose children do not inherit the cap, and whose float32 runs are unchanged by it."""
import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from common import cpu, cuda, runtime
from helpers import REPO, TIMING, run_cli_process
from training import precision

AMX_CPU = set(cpu.AMX_FLAGS) <= cpu.read().flags
needs_amx = pytest.mark.skipif(not AMX_CPU, reason="this CPU has no AMX (amx_bf16, amx_tile in /proc/cpuinfo)")
INTEL_AMX = cpu.Cpu("Intel(R) Xeon(R) Platinum 8481C", "GenuineIntel", "6", "143",
                    frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}), 2)
ZEN4 = cpu.Cpu("AMD EPYC 9R14", "AuthenticAMD", "25", "17", frozenset({"avx512f", "avx512_bf16"}), 2)
NO_BF16 = cpu.Cpu("AMD EPYC 7R13", "AuthenticAMD", "25", "1", frozenset({"avx2"}), 2)


class Kernel:
    """The kernel's answer to the request for the AMX tile state, and whether it was asked."""

    def __init__(self, refusal=None):
        self.refusal, self.asked = refusal, 0

    def __call__(self):
        self.asked += 1
        return self.refusal


# ----------------------------------------------------------------------------------------------
# The decision

@pytest.mark.parametrize("machine, environ, refusal, status, cap, asked", [
    (INTEL_AMX, {}, None, "on", "AVX512_CORE_AMX", 1),  # asked, granted, allowed
    (INTEL_AMX, {}, "EPERM", "refused", None, 1),  # refused: oneDNN keeps its default cap
    (INTEL_AMX, {"DNNL_MAX_CPU_ISA": "AVX512_CORE_AMX"}, None, "on", "AVX512_CORE_AMX", 1),
    (INTEL_AMX, {"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"}, None, "capped", None, 0),  # the user's, as given
    (INTEL_AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, None, "capped", "AVX2", 0),  # under the name oneDNN 2.4.4 reads
    (INTEL_AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "ALL"}, None, "capped", "AVX2", 0),
    (ZEN4, {}, None, "absent", None, 0),
    (ZEN4, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, None, "absent", "AVX512_CORE", 0),
    (NO_BF16, {}, None, "absent", None, 0),
])
def test_the_decision_of_each_cpu_setting_and_answer(machine, environ, refusal, status, cap, asked):
    kernel = Kernel(refusal)
    amx = cpu.decide(machine, environ, kernel)
    assert (amx.status, amx.cap, kernel.asked) == (status, cap, asked)
    if status in ("refused", "capped"):
        assert amx.reason and (refusal or "keeps oneDNN off AMX") in amx.reason


def test_a_users_amx_cap_the_kernel_refuses_is_an_error_not_a_sigill():
    with pytest.raises(cpu.AmxError, match="DNNL_MAX_CPU_ISA=AVX512_CORE_AMX asks oneDNN for AMX, but the "
                                           "kernel refused .*EPERM.*SIGILL"):
        cpu.decide(INTEL_AMX, {"DNNL_MAX_CPU_ISA": "AVX512_CORE_AMX"}, Kernel("EPERM"))


def test_prepare_ends_with_one_line_where_the_users_amx_cap_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(cpu, "read", lambda path=cpu.CPUINFO: INTEL_AMX)
    monkeypatch.setattr(cpu, "request_amx", Kernel("EINVAL"))
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE_AMX")
    monkeypatch.setattr(runtime, "_setup", runtime._setup)
    monkeypatch.setattr(runtime, "_ready", False)  # as in a process not prepared yet
    with pytest.raises(SystemExit) as stop:
        runtime.prepare()
    assert str(stop.value).startswith("error: DNNL_MAX_CPU_ISA=AVX512_CORE_AMX asks oneDNN for AMX")
    assert "\n" not in str(stop.value)


@pytest.mark.parametrize("machine, amx, environ, kernels, slower", [
    (INTEL_AMX, cpu.Amx("on", "AVX512_CORE_AMX"), {}, "AMX", None),
    (INTEL_AMX, cpu.Amx("refused", None, cpu.REFUSED % "EPERM"), {}, "AVX512_BF16",
     "a Linux of 5.16 or newer"),
    (INTEL_AMX, cpu.Amx("capped", None, "DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 keeps oneDNN off AMX"),
     {"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "AVX512_BF16", "unset the cap"),
    (INTEL_AMX, cpu.Amx("capped", "AVX2", "ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN off AMX"),
     {"ONEDNN_MAX_CPU_ISA": "AVX2"}, None, "no bfloat16 kernels under DNNL_MAX_CPU_ISA=AVX2"),
    (ZEN4, cpu.Amx("absent"), {}, "AVX512_BF16", None),  # faster than float32 there
    (ZEN4, cpu.Amx("absent"), {"DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, None, "reference code"),
    (ZEN4, cpu.Amx("absent"), {"DNNL_MAX_CPU_ISA": "avx512_core"}, "AVX512_BF16", None),  # oneDNN ignores it
    (NO_BF16, cpu.Amx("absent"), {}, None, "no bfloat16 kernels"),
])
def test_where_bfloat16_runs_and_whether_it_is_slower_than_float32(machine, amx, environ, kernels, slower):
    assert cpu.bf16_kernels(machine, amx, environ) == kernels
    found = cpu.bf16_slower(machine, amx, environ)
    assert (found is None) == (slower is None) and (slower is None or slower in found)


@pytest.mark.parametrize("machine, amx, verdict", [
    (INTEL_AMX, cpu.Amx("on", "AVX512_CORE_AMX"), "AMX kernels; --amp pays off here"),
    (INTEL_AMX, cpu.Amx("refused", None, cpu.REFUSED % "EPERM"), "AVX512_BF16 kernels; --amp does NOT pay off"),
    (ZEN4, cpu.Amx("absent"), "AVX512_BF16 kernels; --amp pays off here"),
    (cpu.Cpu("Intel(R) Xeon(R) Platinum 8380H", "GenuineIntel", "6", "85", frozenset({"avx512_bf16"}), 2),
     cpu.Amx("absent"), "has not been measured"),
    (NO_BF16, cpu.Amx("absent"), "neither AVX512_BF16 nor AMX"),
])
def test_the_report_says_which_bfloat16_path_this_cpu_has_and_whether_amp_pays_off(machine, amx, verdict, monkeypatch):
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    lines = cpu.describe(machine, amx)
    assert lines[0] == "CPU: %s (%s family %s model %s), 2 cores" % (machine.model, machine.vendor,
                                                                    machine.family, machine.number)
    assert lines[1].startswith("AMX: ") and verdict in lines[2]


def test_the_cpu_is_read_from_the_kernels_list(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                       "model name\t: AMD EPYC 9R45\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2\n")
    found = cpu.read(str(cpuinfo))
    assert (found.model, found.vendor, found.family, found.number) == ("AMD EPYC 9R45", "AuthenticAMD", "26", "2")
    assert found.flags == {"fpu", "avx2", "avx512_bf16"}  # the first processor's
    assert found.name == "AMD EPYC 9R45 (AuthenticAMD family 26 model 2)"
    assert cpu.read(str(tmp_path / "none")).flags == frozenset()


def test_a_bfloat16_run_says_when_it_is_slower_than_float32(monkeypatch):
    monkeypatch.setattr(runtime, "_setup", runtime.Setup(INTEL_AMX, cpu.Amx("refused", None, cpu.REFUSED % "EPERM"),
                                                         "NaiveEngine"))
    line = precision.slowdown("bfloat16")
    assert line.startswith("--amp runs slower than float32 on this CPU: this CPU's AMX units are unused "
                           "(the kernel refused this process the AMX tile state (arch_prctl: EPERM)")
    assert line.endswith("would run them; or train without --amp")
    assert precision.slowdown("float32") is None
    assert (precision.kernels("bfloat16", "cpu"), precision.kernels("float32", "cpu"),
            precision.kernels("float16", "gpu")) == ("AVX512_BF16", "float32", "CUDA")
    monkeypatch.setattr(runtime, "_setup", runtime.Setup(ZEN4, cpu.Amx("absent"), "NaiveEngine"))
    assert precision.slowdown("bfloat16") is None


# ----------------------------------------------------------------------------------------------
# Real processes, on a CPU with AMX

def test_the_kernels_answer_is_read_by_the_real_syscall():
    answer = cpu.request_amx()
    if AMX_CPU:
        assert answer is None or answer in errno.errorcode.values()
    else:  # the kernel knows no tile data for a CPU without it
        assert answer in ("EINVAL", "EOPNOTSUPP", "not Linux on x86-64")


@needs_amx
def test_this_test_process_runs_amx_and_left_the_environment_as_it_was():
    setup = runtime.setup()  # pytest_configure prepared this process
    assert setup.amx.status == "on" and cpu.bf16_kernels(setup.cpu, setup.amx) == "AMX"
    assert os.environ.get("DNNL_MAX_CPU_ISA") != "AVX512_CORE_AMX"


CONVOLUTION = """
import json, os, sys
if sys.argv[1] == "prepared":
    from common import runtime
    runtime.prepare()
import mxnet as mx, numpy as np
rng = np.random.RandomState(0)
x, w = mx.nd.array(rng.randn(8, 64, 16, 16)), mx.nd.array(rng.randn(64, 64, 3, 3) / 24)
conv = lambda x, w: mx.nd.Convolution(x, w, kernel=(3, 3), pad=(1, 1), num_filter=64, no_bias=True)
from mxnet.contrib import amp
bf16 = lambda a: mx.nd.amp_cast(a, dtype=amp.amp.bfloat16)
low = mx.nd.amp_cast(conv(bf16(x), bf16(w)), dtype="float32").asnumpy()
high = conv(x, w).asnumpy()
print(json.dumps({"error": float(np.abs(low - high).max() / np.abs(high).max()),
                  "cap": os.environ.get("DNNL_MAX_CPU_ISA")}))
"""


def convolution(mode, env=None):
    """A bfloat16 and a float32 convolution in a fresh interpreter ('prepared' by runtime, or
    'bare': MXNet imported directly) with oneDNN's log; (its output, the kernels the log names)."""
    environment = {k: v for k, v in os.environ.items() if not k.endswith("MAX_CPU_ISA")}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CONVOLUTION), mode], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env=dict(environment, DNNL_VERBOSE="1", PYTHONPATH=REPO, **(env or {})))
    assert result.returncode == 0, result.stderr[-2000:]
    log = [line for line in result.stdout.splitlines() if line.startswith("dnnl_verbose,exec,cpu,convolution")]
    return json.loads(result.stdout.splitlines()[-1]), {line.split(",")[4] for line in log}


@needs_amx
def test_a_prepared_process_runs_bfloat16_convolutions_on_amx_within_bfloat16s_precision():
    out, kernels = convolution("prepared")
    assert "brgconv:avx512_core_amx_bf16" in kernels
    assert out["error"] < 2 ** -7  # bfloat16 keeps 8 bits of mantissa: sums of 576 products
    assert out["cap"] is None  # the cap was there for oneDNN's start only


@needs_amx
@pytest.mark.parametrize("env", [{"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}])
def test_a_users_cap_is_obeyed(env):
    _, kernels = convolution("prepared", env)
    assert not any("amx" in k for k in kernels) and "brgconv:avx512_core_bf16" in kernels


@needs_amx
def test_a_process_that_loads_mxnet_by_itself_stays_off_amx_and_lives():
    _, kernels = convolution("bare")  # a child of this prepared process: no cap, no permission
    assert kernels and not any("amx" in k for k in kernels)


@needs_amx
def test_a_float32_run_computes_the_same_with_amx_on_and_off(data_dir):
    """AMX computes bfloat16 and int8 only: oneDNN's float32 kernels are the same under its cap."""
    runs = {}
    for name, env in (("on", {}), ("off", {"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"})):
        result = run_cli_process("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--output-dir", "run",
                                 env=env, cwd=None)
        assert result.returncode == 0, result.stderr
        runs[name] = [{k: v for k, v in json.loads(line).items() if k not in TIMING}
                      for line in result.stdout.splitlines()]
        assert "warning" not in result.stderr
    assert runs["on"] == runs["off"] and len(runs["on"]) == 2


@needs_amx
def test_an_amp_run_says_its_kernels_and_warns_where_amx_is_left_unused(data_dir, tmp_path):
    for name, env in (("on", {}), ("capped", {"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"})):
        result = run_cli_process("--data-dir", data_dir, "--classes", "0,1", "--epochs", "1", "--amp",
                                 "--output-dir", str(tmp_path / name), env=env)
        assert result.returncode == 0, result.stderr
        config = json.load(open(tmp_path / name / "config.json"))
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        if name == "on":
            assert config["kernels"] == "AMX" and config["amx"] == "on" and not warnings
            assert "in bfloat16 mixed precision (AMX kernels)" in result.stderr
        else:
            assert config["kernels"] == "AVX512_BF16"
            assert config["amx"] == "capped: DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 keeps oneDNN off AMX"
            assert warnings == ["warning: --amp runs slower than float32 on this CPU: this CPU's AMX units "
                                "are unused (DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 keeps oneDNN off AMX), and "
                                "its AVX512_BF16 kernels are slower than float32; unset the cap (or set it "
                                "to AVX512_CORE_AMX) to run them; or train without --amp"]
        assert config["cpu_model"] == cpu.read().name and config["cpu_cores"] >= 1


def test_the_gpu_report_says_where_this_cpu_runs_bfloat16_and_whether_amp_pays_off():
    result = subprocess.run([sys.executable, "-m", "tools.gpu_report"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={k: v for k, v in os.environ.items() if not k.endswith("MAX_CPU_ISA")})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    machine = cpu.read()
    assert "CPU: %s, " % machine.name in result.stdout
    verdict = next(line for line in lines if line.startswith("bfloat16 (--amp on the CPU): "))
    if AMX_CPU:
        assert "AMX: on (the kernel granted the tile state" in result.stdout
        assert verdict.endswith("AMX kernels; --amp pays off here (faster than float32)")
    elif not set(cpu.BF16_FLAGS) & machine.flags:
        assert "neither AVX512_BF16 nor AMX" in verdict
    assert ("MXNet engine: NaiveEngine" if cuda.gpu_build() is None else "MXNet engine: ThreadedEnginePerDevice") in lines
