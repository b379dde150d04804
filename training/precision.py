"""Mixed precision (--amp): the precision a run computes in, and MXNet's AMP wired into it.

    choose(amp, amp_dtype, device_type)   'float32', 'float16' or 'bfloat16'; ValueError (a usage
                                          error) where the device cannot run what was asked
    kernels(precision, device_type)       where the arithmetic runs: 'CUDA', 'float32', or oneDNN's
                                          bfloat16 'AMX' or 'AVX512_BF16' kernels
    slowdown(precision)                   why this CPU runs the precision slower than float32, or None
    enable(precision)                     mxnet.contrib.amp.init, before any network is built
    attach(trainer, precision)            amp.init_trainer: dynamic loss scaling
    backward(losses, trainer)             autograd.backward, of the scaled losses under AMP
    scaler_state / restore_scaler         the loss scale, kept in checkpoints

MXNet's AMP casts each operator's inputs by its lists: convolutions and matrix products run in
the low precision, softmax, the loss and reductions in float32, BatchNorm, pooling and sums in
the precision of their input, and the parameters (so the weights, the optimizer's state,
checkpoints and exports) stay float32. float16 runs on GPUs with
dynamic loss scaling (MXNet's AMP tutorial): the loss is multiplied by the scale before the
backward pass, the Trainer divides it out again, and a step whose gradients overflowed is skipped
and the scale halved (doubled again after 2,000 clean steps). bfloat16 has float32's exponent
range and needs no scaling; it goes through the same calls with a scale of 1 that is never
checked (UnitScale), so the CPU runs the wiring a GPU runs. MXNet's CPU has bfloat16 kernels in
oneDNN only for CPUs with AVX512_BF16 or AMX (common/cpu.py: AMX needs the kernel's permission and oneDNN's cap, which
runtime.prepare gives); elsewhere it would fall back to kernels slower than float32, and it has
no float16 matrix product at all. Its GPUs have no bfloat16 kernels.

amp.init changes MXNet's operator functions for the rest of the process: a run calls it once,
from main, and tests call it in a process of their own.
"""
import contextlib

from common import cpu, runtime

AMP_DTYPES = ("float16", "bfloat16")  # --amp-dtype


def choose(amp, amp_dtype, device_type, flags=None):
    """The precision of a run: 'float32' without amp; with it amp_dtype, or by default float16 on
    GPUs and bfloat16 on CPUs. flags: the CPU's (None: read them). Raises ValueError saying why
    the device cannot run the precision asked for."""
    if not amp:
        return "float32"
    dtype = amp_dtype or ("float16" if device_type == "gpu" else "bfloat16")
    if device_type == "gpu" and dtype == "bfloat16":
        raise ValueError("--amp-dtype bfloat16 runs on CPUs only: MXNet 1.9.1 has no bfloat16 GPU "
                         "kernels; on GPUs --amp computes in float16")
    if device_type == "cpu" and dtype == "float16":
        raise ValueError("--amp-dtype float16 runs on GPUs only: MXNet's CPU kernels have no float16 "
                         "matrix product; on a CPU --amp computes in bfloat16")
    if device_type == "cpu":
        flags = cpu.read().flags if flags is None else flags
        if not flags & set(cpu.BF16_FLAGS):
            raise ValueError(
                "--amp on the CPU computes in bfloat16, which needs a CPU with AVX512_BF16 or AMX "
                "(flags avx512_bf16 or amx_bf16 in %s), and this CPU has neither: MXNet would fall "
                "back to bfloat16 kernels slower than float32. Train without --amp" % cpu.CPUINFO)
    return dtype


def kernels(precision, device_type):
    """Where a run's arithmetic runs: 'CUDA' on GPUs; on the CPU 'float32', or for bfloat16 the
    oneDNN kernels this process has: 'AMX', 'AVX512_BF16' or 'reference' (runtime.setup)."""
    if device_type == "gpu":
        return "CUDA"
    if precision != "bfloat16":
        return "float32"
    setup = runtime.setup()
    return cpu.bf16_kernels(setup.cpu, setup.amx) or "reference"


def slowdown(precision):
    """The line a bfloat16 run on the CPU says where it is known to run slower than float32 here
    (its reason and what would help), or None."""
    setup = runtime.setup()
    why = cpu.bf16_slower(setup.cpu, setup.amx) if precision == "bfloat16" else None
    return "--amp runs slower than float32 on this CPU: %s; or train without --amp" % why if why else None


def enable(precision, image_convolution_filters=None):
    """Turns MXNet's AMP on for the rest of the process (before any network is built); nothing
    for float32.

    image_convolution_filters: for bfloat16, the filter count of the network's convolution of
    the image, when no other convolution has as many (models.image_convolution_filters). On
    AVX512_BF16 oneDNN has no bfloat16 kernel for a convolution of 3 input channels: its
    fallback writes a plain memory layout that sends the BatchNorm after it to a reference
    kernel, so there that convolution stays float32 (AMP casts by operator and its arguments
    only: by its filter count; its inputs are still rounded to bfloat16 on the way, AMP's cast
    comes first). oneDNN's AMX kernels take 3 channels in the layout the rest of the network
    uses, and there the whole network computes in bfloat16 (docs/results-and-speed.md).
    """
    if precision == "float32":
        return
    from mxnet.contrib import amp

    dtype = amp.amp.bfloat16 if precision == "bfloat16" else precision  # AMP's lists take its own bfloat16
    conditional = list(amp.amp.list_conditional_fp32_ops(dtype))
    if precision == "bfloat16" and image_convolution_filters and kernels(precision, "cpu") != "AMX":
        conditional.append(("Convolution", "num_filter", [image_convolution_filters]))
    amp.init(target_dtype=precision, conditional_fp32_ops=conditional)


def attach(trainer, precision):
    """Gives the Trainer AMP's loss scaler: for float16 AMP's dynamic one, for bfloat16 a scale
    of 1 that is never checked (UnitScale); nothing for float32."""
    if precision == "float32":
        return
    from mxnet.contrib import amp

    amp.init_trainer(trainer)
    if precision == "bfloat16":
        trainer._amp_loss_scaler = UnitScale()


class UnitScale:
    """The loss scaler of bfloat16, which has float32's exponent range: gradients overflow only
    where float32's would (and the NaN stop catches that), so the scale stays 1. AMP's dynamic
    scaler reads a flag back from the device after every step to find overflows, which would make
    the loop wait for the device at every step instead of once per epoch."""
    loss_scale = 1.0
    _loss_scale = _next_loss_scale = 1.0
    _unskipped = 0

    def has_overflow(self, params):
        return False


def scaling(trainer):
    """Whether the Trainer has AMP's loss scaler (attach)."""
    return getattr(trainer, "_amp_loss_scaler", None) is not None


def backward(losses, trainer):
    """autograd.backward of the losses: under AMP of the losses times the loss scale, which the
    Trainer's next step divides out (and skips, lowering the scale, if a gradient overflowed).
    Called inside autograd.record(), which the scaling must be recorded in."""
    from mxnet import autograd
    from mxnet.contrib import amp

    with amp.scale_loss(losses, trainer) if scaling(trainer) else contextlib.nullcontext(losses) as scaled:
        autograd.backward(scaled)


SCALER_FIELDS = ("_loss_scale", "_next_loss_scale", "_unskipped")  # amp.LossScaler's state


def scaler_state(trainer):
    """The loss scaler's state as JSON values (None without AMP): a resumed run scales, skips and
    grows the scale as the uninterrupted run would."""
    if not scaling(trainer):
        return None
    return {name.lstrip("_"): getattr(trainer._amp_loss_scaler, name) for name in SCALER_FIELDS}


def restore_scaler(trainer, saved):
    """Puts back a scaler_state (nothing when either side has no loss scaling)."""
    if saved and scaling(trainer):
        for name in SCALER_FIELDS:
            setattr(trainer._amp_loss_scaler, name, saved[name.lstrip("_")])
