"""Where a training step's time goes: a network's training steps on random images, timed, and
the time of each operator per step by MXNet's profiler.

    python -m tools.step_profile --model spec-resnet --batch-size 128
    python -m tools.step_profile --model airbench94 --batch-size 1024 --amp

Prints the seconds of a step (the median of --steps after two warm-up steps) and the operators by
their milliseconds per step, the largest first. MXNet's bulk execution is off in this process,
so that the profiler sees each operator on its own (a step can take a little longer than in
training). For oneDNN's own kernels and their implementations, run it with DNNL_VERBOSE=1.
"""
import json
import os
import statistics
import sys
import time

from common import runtime
from common.cli import ArgumentParser, command

MODELS = ("spec-resnet", "airbench94")
WARMUP = 2  # steps before the timed ones: graph building, memory planning


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spec-resnet", choices=MODELS)
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps, and profiled steps")
    parser.add_argument("--amp", action="store_true", help="bfloat16 mixed precision, as --amp trains")
    parser.add_argument("--top", type=int, default=15, help="operators to list")
    return parser


def network(name, batch_size, precision):
    """(the network, hybridized, with its Trainer, a random batch and its labels)."""
    import mxnet as mx
    import numpy as np
    from mxnet import gluon

    import models
    from training import precision as amp

    amp.enable(precision, models.image_convolution_filters(name))
    mx.random.seed(0)
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.normal(size=(batch_size, 3, 32, 32)).astype(np.float32))
    y = mx.nd.array(rng.randint(0, 10, batch_size))
    if name == "airbench94":
        net = models.Airbench94(10)
        net.initialize()
        net.whiten(x.asnumpy())
    else:
        net = models.build(name, 10, [mx.cpu()])
        models.initialize(net, name, mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "nag", {"learning_rate": 0.01, "momentum": 0.9})
    amp.attach(trainer, precision)
    return net, trainer, x, y


def step(net, trainer, x, y, loss_fn):
    from mxnet import autograd

    from training import precision

    with autograd.record():
        losses = [loss_fn(net(x), y)]
        precision.backward(losses, trainer)
    trainer.step(x.shape[0])


def profile(args):
    """(seconds per step, [(operator, ms per step)] largest first)."""
    import mxnet as mx
    from mxnet import gluon

    net, trainer, x, y = network(args.model, args.batch_size, "bfloat16" if args.amp else "float32")
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(WARMUP):
        step(net, trainer, x, y, loss_fn)
    mx.nd.waitall()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step(net, trainer, x, y, loss_fn)
        mx.nd.waitall()
        seconds.append(time.perf_counter() - start)
    mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                           filename=os.devnull)
    mx.profiler.set_state("run")
    for _ in range(args.steps):
        step(net, trainer, x, y, loss_fn)
    mx.nd.waitall()
    mx.profiler.set_state("stop")
    times = dict(json.loads(mx.profiler.dumps(reset=True, format="json"))["Time"]).get("operator", {})
    per_step = sorted(((name, t["Total"] / args.steps) for name, t in times.items()), key=lambda p: -p[1])
    return statistics.median(seconds), per_step


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    seconds, operators = profile(args)
    total = sum(ms for _, ms in operators)
    print("%s, batch %d, %s: %.3f s per step (median of %d); operators %.1f ms per step"
          % (args.model, args.batch_size, "bfloat16" if args.amp else "float32", seconds, args.steps, total))
    for name, ms in operators[:args.top]:
        print("%10.1f ms  %5.1f%%  %s" % (ms, 100 * ms / total, name))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MXNET_EXEC_BULK_EXEC_TRAIN", "0")  # read when MXNet loads
    os.environ.setdefault("MXNET_EXEC_BULK_EXEC_INFERENCE", "0")
    sys.exit(runtime.start(main))
