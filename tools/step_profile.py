"""Where a training step's time goes: a network's training steps on random images, timed, and
the time of each operator per step by MXNet's profiler. A step is training's own
(training.loop.train_step on the TrainState train_cifar10.py builds: a network with the recipe
made for it where it has one, hooks included, else with the spec's procedure).

    python -m tools.step_profile --model spec-resnet --batch-size 128
    python -m tools.step_profile --model airbench94 --batch-size 1024 --amp

Prints the seconds of a step (the median of --steps after two warm-up steps) and the operators by
their milliseconds per step, the largest first, with their calls per step. MXNet's bulk
execution is off in this process, so that the profiler sees each operator on its own (a step can
take a little longer than in training). For oneDNN's own kernels and their implementations, run it with DNNL_VERBOSE=1.
"""
import json
import os
import statistics
import sys
import tempfile
import time

from common import runtime
from common.cli import ArgumentParser, command

WARMUP = 2  # steps before the timed ones: graph building, memory planning


def build_parser():
    import models  # built by main, once the process is ready for MXNet

    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=models.SPEC_RESNET, choices=list(models.NETWORKS), help="the network")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps, and profiled steps")
    parser.add_argument("--amp", action="store_true", help="bfloat16 mixed precision, as --amp trains")
    parser.add_argument("--top", type=int, default=15, help="operators to list")
    return parser


def training_state(name, batch_size, precision):
    """(the TrainState of a run of the network as train_cifar10.py builds it, with the recipe
    made for it or else the spec's procedure; a random batch; its labels)."""
    import mxnet as mx
    import numpy as np

    from data import prepare
    from training import distributed, recipes
    from training.config import RunConfig
    from training.state import build_state

    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(batch_size, 3, 32, 32)).astype(np.uint8)
    labels = np.arange(batch_size) % 10
    dataset = prepare(images, labels, images, labels, classes=list(range(10)), class_names=list("0123456789"))
    made_for = recipes.for_network(name)  # else the flags' own procedure
    recipe = recipes.get(made_for[0] if made_for else recipes.DEFAULT)
    config = RunConfig(**dict(recipe.defaults(), recipe=recipe.name, model=name, batch_size=batch_size,
                              precision=precision, amp=precision != "float32"))
    state = build_state(config, dataset, [mx.cpu()], distributed.connect("device", {}))
    return state, dataset.train_x, dataset.train_y


def profile(args):
    """(seconds per step, [(operator, ms per step, calls per step)] largest first)."""
    import mxnet as mx

    from training.loop import train_step

    state, x, y = training_state(args.model, args.batch_size, "bfloat16" if args.amp else "float32")
    for _ in range(WARMUP):
        train_step(state, x, y)
    mx.nd.waitall()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        train_step(state, x, y)
        mx.nd.waitall()
        seconds.append(time.perf_counter() - start)
    # The profiler writes its trace by replacing the file it is given: a file of its own in a
    # folder of its own (given /dev/null, it replaced the device with a regular file).
    with tempfile.TemporaryDirectory(prefix="step-profile-") as folder:
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(folder, "profile.json"))
        mx.profiler.set_state("run")
        for _ in range(args.steps):
            train_step(state, x, y)
        mx.nd.waitall()
        mx.profiler.set_state("stop")
        times = dict(json.loads(mx.profiler.dumps(reset=True, format="json"))["Time"]).get("operator", {})
        mx.profiler.dump(finished=True)  # its trace now, not while the folder is being removed
    # Under NaiveEngine MXNet 1.9.1's profiler records operators twice (counts and totals about
    # double those of ThreadedEnginePerDevice on the same steps).
    records = 2 if runtime.setup().engine == "NaiveEngine" else 1
    per_step = sorted(((name, t["Total"] / args.steps / records, t["Count"] / args.steps / records)
                       for name, t in times.items()), key=lambda p: -p[1])
    return statistics.median(seconds), per_step


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    seconds, operators = profile(args)
    total = sum(ms for _, ms, _ in operators)
    print("%s, batch %d, %s: %.3f s per step (median of %d); operators %.1f ms per step"
          % (args.model, args.batch_size, "bfloat16" if args.amp else "float32", seconds, args.steps, total))
    for name, ms, calls in operators[:args.top]:
        print("%10.1f ms  %5.1f%%  %4g calls  %s" % (ms, 100 * ms / total, calls, name))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MXNET_EXEC_BULK_EXEC_TRAIN", "0")  # read when MXNet loads
    os.environ.setdefault("MXNET_EXEC_BULK_EXEC_INFERENCE", "0")
    sys.exit(runtime.start(main))
