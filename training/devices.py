"""The contexts this process computes on: the CPU, or GPUs chosen by count or by id."""
import mxnet as mx

from common import cuda


def gpu_ids(num_gpus=0, gpus=None):
    """The GPU ids a run asks for: --gpus as given (e.g. 0,2), else 0..--num-gpus - 1."""
    return list(gpus) if gpus else list(range(num_gpus))


def device_type(num_gpus=0, gpus=None):
    """'gpu' when the run asks for GPUs, else 'cpu' (what --amp's precision depends on)."""
    return "gpu" if gpu_ids(num_gpus, gpus) else "cpu"


def contexts(num_gpus=0, gpus=None, available=None):
    """[mx.cpu()] when no GPU is asked for, else [mx.gpu(i) for each id asked for].

    available: how many GPUs there are (None: ask MXNet). Raises ValueError, naming the flag,
    when an id does not exist, and cuda.GpuError for a GPU this MXNet has no code for (asked of
    the driver before MXNet touches a GPU).
    """
    ids = gpu_ids(num_gpus, gpus)
    if not ids:
        return [mx.cpu()]
    cuda.preflight(ids)
    flag = "--gpus %s" % ",".join(map(str, ids)) if gpus else "--num-gpus %d" % num_gpus
    if available is None:
        try:
            available = mx.context.num_gpus()
        except mx.base.MXNetError as e:  # a CUDA build without a working driver
            raise ValueError("%s: MXNet cannot use CUDA here (%s)" % (flag, e)) from None
    if max(ids) >= available:
        build = "" if available else (" (a CPU-only MXNet build or no NVIDIA GPU: see "
                                      "docs/setup-and-gpus.md for mxnet-cu112)")
        if gpus:
            raise ValueError("%s asks for GPU %d, but MXNet sees %d%s%s"
                             % (flag, max(ids), available, " (ids 0-%d)" % (available - 1) if available else "",
                                build + ("; leave out --gpus to train on the CPU" if not available else "")))
        raise ValueError("%s asks for %d GPU(s), but MXNet sees %d%s. Use --num-gpus %d%s."
                         % (flag, num_gpus, available, build, available,
                            "" if available else " to train on the CPU"))
    return [mx.gpu(i) for i in ids]
