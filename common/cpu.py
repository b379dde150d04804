"""The CPU MXNet computes on: what it is, and which units oneDNN may run bfloat16 on.

    read(path)                  Cpu: model name, vendor, family and model numbers, flags, cores
    decide(cpu, environ, ask)   Amx: whether this process runs oneDNN's AMX kernels, and why not
    request_amx()               asks the kernel for the AMX tile state (the `ask` of decide)
    bf16_kernels(cpu, amx)      'AMX', 'AVX512_BF16' or None: where bfloat16 runs
    bf16_slower(cpu, amx)       why bfloat16 runs slower than float32 here, or None
    describe(cpu, amx)          lines for a report

Why AMX needs two steps: MXNet 1.9.1 carries oneDNN 2.4.4, which treats Intel's AMX as a preview
ISA. It runs its AMX kernels only under DNNL_MAX_CPU_ISA=AVX512_CORE_AMX, and it never asks Linux
for the AMX tile state, which Linux (5.16 and newer) gives a process only once it asks
(arch_prctl ARCH_REQ_XCOMP_PERM): without that, the first AMX instruction ends the process with
SIGILL. Later oneDNN releases ask by themselves. So on a CPU with AMX the process asks first, and
only once the kernel grants it does oneDNN get the cap. AMX computes bfloat16 and int8 only:
float32 runs the same kernels either way.

oneDNN reads its cap once, at its first primitive, not when MXNet loads; the cap is in the
environment for that moment only (engine.starting), so that a child process (a run of --seeds, a
sweep trial, a test's interpreter) inherits neither the cap nor the permission (execve drops it)
and decides for itself. A cap the user set (DNNL_MAX_CPU_ISA, or ONEDNN_MAX_CPU_ISA, the name
newer oneDNN reads, which 2.4.4 does not) is obeyed as given.

Standard library only: it runs before MXNet loads. Importing it changes nothing.
"""
import ctypes
import errno
import os
import platform
import sys
from dataclasses import dataclass

CPUINFO = "/proc/cpuinfo"
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of the CPUs oneDNN runs bfloat16 on
AMX_FLAGS = ("amx_bf16", "amx_tile")  # what oneDNN's bfloat16 AMX kernels use
CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # newer oneDNN reads the first before the second
ONEDNN_CAP = "DNNL_MAX_CPU_ISA"  # the one oneDNN 2.4.4 reads
AMX_CAP = "AVX512_CORE_AMX"
# oneDNN 2.4.4's cap values that leave its bfloat16 kernels on; ALL leaves AMX out (a preview ISA
# there), and a value it does not know counts as ALL.
BF16_CAPS = ("ALL", "AVX512_CORE_BF16", AMX_CAP)
KNOWN_CAPS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_MIC", "AVX512_MIC_4OPS", "AVX512_CORE",
              "AVX512_CORE_VNNI") + BF16_CAPS
# Linux's arch_prctl (arch/x86/include/uapi/asm/prctl.h) and the tile data's XSAVE feature number
SYS_ARCH_PRCTL = 158  # x86-64
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18
# What would turn AMX on, by why it is off
AMX_OFF = {"refused": "a Linux of 5.16 or newer on a machine that enables AMX would run them",
           "capped": "unset the cap (or set it to %s) to run them" % AMX_CAP,
           "unasked": "start the process through common.runtime to run them"}
REFUSED = ("the kernel refused this process the AMX tile state (arch_prctl: %s): a Linux older "
           "than 5.16, or a virtual machine or container that lists AMX without enabling it")


class AmxError(Exception):
    """The user's cap asks oneDNN for AMX, which the kernel refused: the run would die of SIGILL."""


@dataclass(frozen=True)
class Cpu:
    model: str = "unknown CPU"  # /proc/cpuinfo's model name
    vendor: str = ""  # GenuineIntel, AuthenticAMD
    family: str = ""
    number: str = ""  # its model number
    flags: frozenset = frozenset()
    cores: int = 1  # the cores this process may run on

    @property
    def name(self):
        """The model name with what identifies it where the name is generic (a virtual machine's
        'Intel(R) Xeon(R) Processor'): 'Intel(R) Xeon(R) Processor (GenuineIntel family 6 model 143)'."""
        ids = " ".join(filter(None, (self.vendor, self.family and "family " + self.family,
                                     self.number and "model " + self.number)))
        return "%s (%s)" % (self.model, ids) if ids else self.model


@dataclass(frozen=True)
class Amx:
    """Whether oneDNN runs its AMX kernels in this process.

    status: 'on'; 'absent' (the CPU has no AMX); 'refused' (by the kernel); 'capped' (by the
    user's ISA cap); 'unasked' (a process that loaded MXNet without runtime.prepare).
    cap: the DNNL_MAX_CPU_ISA oneDNN starts with (None: the environment's own).
    reason: why AMX is off, for 'refused' and 'capped'."""
    status: str
    cap: str = None
    reason: str = None


def read(path=CPUINFO):
    """The Cpu of this machine, from the kernel's list (its first processor; an empty Cpu where
    there is no list)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return Cpu(model=fields.get("model name") or platform.processor() or "unknown CPU",
               vendor=fields.get("vendor_id", ""), family=fields.get("cpu family", ""),
               number=fields.get("model", ""), flags=frozenset(fields.get("flags", "").split()),
               cores=usable_cores())


def usable_cores():
    """The cores this process may run on (its affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def user_cap(environ):
    """(variable, value) of the ISA cap the user set, or (None, None)."""
    for name in CAP_VARIABLES:
        if environ.get(name):
            return name, environ[name]
    return None, None


def decide(cpu, environ, ask):
    """The Amx of a process on cpu with environ. ask(): the kernel's answer to the request for
    the AMX tile state (None: granted; else why not), called only where AMX could run. Raises
    AmxError where the user's own cap asks for AMX and the kernel refuses it."""
    name, value = user_cap(environ)
    cap = value if name and name != ONEDNN_CAP else None  # what oneDNN 2.4.4 would not read by itself
    if not set(AMX_FLAGS) <= cpu.flags:
        return Amx("absent", cap)
    if value and value != AMX_CAP:
        return Amx("capped", cap, "%s=%s keeps oneDNN off AMX" % (name, value))
    refusal = ask()
    if refusal is None:
        return Amx("on", AMX_CAP)
    if value:
        raise AmxError("%s=%s asks oneDNN for AMX, but %s; the first AMX instruction would end the run "
                       "(SIGILL). Unset %s (bfloat16 then runs on AVX512_BF16) or set it to "
                       "AVX512_CORE_BF16" % (name, value, REFUSED % refusal, name))
    return Amx("refused", None, REFUSED % refusal)


def unasked(cpu):
    """The Amx of a process that never asked: AMX is off where the CPU has it."""
    if not set(AMX_FLAGS) <= cpu.flags:
        return Amx("absent")
    return Amx("unasked", reason="this process did not ask the kernel for it (common.runtime.prepare does)")


def request_amx():
    """Asks the kernel for the AMX tile state for this process; None when granted, else the
    reason (an errno name)."""
    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        return "not Linux on x86-64"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0:
        return None
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def effective_cap(amx, environ):
    """The cap oneDNN runs under: the decision's, else the user's DNNL_MAX_CPU_ISA, else ALL."""
    return amx.cap or environ.get(ONEDNN_CAP) or "ALL"


def bf16_kernels(cpu, amx, environ=None):
    """Where oneDNN runs bfloat16 in this process: 'AMX', 'AVX512_BF16', or None (no bfloat16
    kernels: this CPU has none, or the cap leaves them out)."""
    if amx.status == "on":
        return "AMX"
    cap = effective_cap(amx, os.environ if environ is None else environ)
    if "avx512_bf16" in cpu.flags and (cap in BF16_CAPS or cap not in KNOWN_CAPS):
        return "AVX512_BF16"
    return None


def bf16_slower(cpu, amx, environ=None):
    """Why bfloat16 is known to run slower than float32 in this process, or None: on a CPU with
    AMX, oneDNN 2.4.4's AVX512_BF16 kernels are slower than its float32 ones (measured:
    docs/results-and-speed.md), and without bfloat16 kernels oneDNN falls back to reference code."""
    environ = os.environ if environ is None else environ
    kernels = bf16_kernels(cpu, amx, environ)
    if kernels == "AMX":
        return None
    if kernels is None:
        return ("oneDNN has no bfloat16 kernels under %s=%s and falls back to reference code; unset "
                "it" % (ONEDNN_CAP, effective_cap(amx, environ)))
    if amx.status in AMX_OFF:
        return ("this CPU's AMX units are unused (%s), and its AVX512_BF16 kernels are slower than "
                "float32; %s" % (amx.reason, AMX_OFF[amx.status]))
    return None


def describe(cpu, amx):
    """Lines for a report: the CPU, and how oneDNN runs bfloat16 on it."""
    kernels = bf16_kernels(cpu, amx)
    lines = ["CPU: %s, %d core%s" % (cpu.name, cpu.cores, "s" if cpu.cores != 1 else "")]
    lines.append({"on": "AMX: on (the kernel granted the tile state; oneDNN runs its AMX kernels)",
                  "absent": "AMX: not on this CPU"}.get(amx.status, "AMX: off: %s" % amx.reason))
    slower = bf16_slower(cpu, amx)
    if kernels is None and not set(BF16_FLAGS) & cpu.flags:
        verdict = "none: this CPU has neither AVX512_BF16 nor AMX, so --amp on the CPU is refused"
    elif slower:
        verdict = "%s kernels; --amp does NOT pay off here: %s" % (kernels or "reference", slower)
    elif kernels == "AMX" or cpu.vendor == "AuthenticAMD":
        verdict = "%s kernels; --amp pays off here (faster than float32)" % kernels
    else:
        verdict = "%s kernels; whether --amp pays off on this CPU has not been measured" % kernels
    lines.append("bfloat16 (--amp on the CPU): " + verdict)
    return lines
