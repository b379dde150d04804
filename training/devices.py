"""The contexts this process computes on: the CPU, or GPUs 0..N-1."""
import mxnet as mx


def contexts(num_gpus):
    """[mx.cpu()] for 0, else [mx.gpu(0), ..., mx.gpu(N-1)]. Raises ValueError if they don't exist."""
    if num_gpus == 0:
        return [mx.cpu()]
    try:
        available = mx.context.num_gpus()
    except mx.base.MXNetError as e:  # a CUDA build without a working driver
        raise ValueError("--num-gpus %d: MXNet cannot use CUDA here (%s)" % (num_gpus, e)) from None
    if num_gpus > available:
        build = "" if available else (" (a CPU-only MXNet build or no NVIDIA GPU: see the README "
                                      "for mxnet-cu112)")
        raise ValueError("--num-gpus %d asks for %d GPU(s), but MXNet sees %d%s. Use --num-gpus %d%s."
                         % (num_gpus, num_gpus, available, build, available,
                            "" if available else " to train on the CPU"))
    return [mx.gpu(i) for i in range(num_gpus)]
