"""Side-by-side speed benchmark: train_cifar10.py against another training script, on the same machine and data.

    python -m tools.benchmark --data-dir DIR --other tools/torch_reference.py \
        --other-python .venv-torch/bin/python --classes 0,1 --reps 3 [--amp]
    python -m tools.benchmark --data-dir DIR --other tools/torch_best.py --other-python .venv-torch/bin/python \
        --other-args='--bf16 --channels-last' --amp-only --reps 3
    python -m tools.benchmark --data-dir DIR --breakdown      # where train_cifar10.py's time goes

The sides (train_cifar10.py in float32, with --amp in mixed precision too, and the other script)
run as fresh processes, one after the other, each rep starting with the next side, `--reps` times
each. Wall time is measured as a user feels it: from process start to the last epoch's JSON line
on stdout (and to the process's exit, which adds the end of a run: the population statistics and
the confusion matrix). The table gives medians, the ratios of train_cifar10.py's sides to the
other script and of --amp to float32, and the floor: the network's multiply-adds at this
machine's measured FP32 matrix-multiply rate. Peak memory is each process's maximum resident set
size.

DIR holds cifar-10-batches-bin/ (both sides read the same files). The other script must take
`DATA_ROOT --classes 0,1|all --epochs N` (with any --recipe but the spec's, which trains all ten
classes as airbench's scripts do: `DATA_ROOT --epochs N`), and --other-args, and print one JSON
line per epoch with its test accuracy (test_acc, or val_acc as airbench's scripts name it;
tta_test_acc or tta_val_acc where it measures test-time augmentation).

This process prepares itself for MXNet (common.runtime.prepare, which sets OMP_NUM_THREADS) and
loads it only after the runs, for the floor, or for the breakdown: both sides start with the
environment as the user gave it.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import cpu, runtime
from common.cli import ArgumentParser, UserError, command
from training import recipes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------
# Running one side

class SideFailed(UserError):
    """One side of the benchmark did not run to its end; the message holds its stderr's tail."""


def run_side(cmd, log_path):
    """Runs cmd; returns wall time to its last epoch line, its last epoch record and peak RSS.

    Stderr goes to log_path (shown if the run fails). Raises SideFailed on a non-zero exit.
    """
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO)
        last, last_at, tta = None, None, None
        for line in proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            record = {k.replace("val_acc", "test_acc"): v for k, v in record.items()}
            tta = record.get("tta_test_acc", tta)
            if "epoch" in record and "test_acc" in record:
                last, last_at = record, time.perf_counter() - start
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.perf_counter() - start
        proc.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    if proc.returncode != 0 or last is None:
        with open(log_path) as log:
            tail = log.read()[-2000:]
        raise SideFailed("%s exited with %d:\n%s" % (" ".join(cmd), proc.returncode, tail))
    return {"wall": last_at, "exit": ended, "train_time": last["time"], "test_acc": last["test_acc"],
            "tta_test_acc": -1.0 if tta is None else tta,  # -1: not measured
            "epochs": last["epoch"] + 1, "rss_gib": usage.ru_maxrss / 2 ** 20}  # ru_maxrss: KiB


MXNET, MXNET_AMP, OTHER = "train_cifar10.py", "train_cifar10.py --amp", "other"  # the sides' names


def mxnet_cmd(args, out_dir, extra=()):
    return [sys.executable, os.path.join(REPO, "train_cifar10.py"), "--data-dir", args.data_dir,
            "--recipe", args.recipe, "--classes", args.classes, "--epochs", "%g" % args.epochs,
            *(["--seed", str(args.seed)] if args.seed is not None else []),
            "--no-comet", "--quiet", "--output-dir", out_dir, *extra]


def other_cmd(args):
    classes = ["--classes", args.classes] if args.recipe == recipes.DEFAULT else []
    seed = ["--seed", str(args.seed)] if args.seed is not None else []
    return [args.other_python or sys.executable, args.other, args.data_dir, *classes,
            "--epochs", "%g" % args.epochs, *seed, *args.other_args.split()]


def sides(args):
    """The sides to run: {name: cmd(out_dir)}."""
    found = {} if args.amp_only else {MXNET: lambda out: mxnet_cmd(args, out)}
    if args.amp or args.amp_only:
        found[MXNET_AMP] = lambda out: mxnet_cmd(args, out, ["--amp"])
    if args.other:
        found[OTHER] = lambda out: other_cmd(args)
    return found


def alternate(args, work_dir):
    """{side: [run, ...]}: reps of each side, each rep starting with the next side."""
    commands = sides(args)
    names = list(commands)
    runs = {name: [] for name in names}
    for rep in range(args.reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            label = "%s-%d" % (name.replace(" --", "-").replace(".py", ""), rep)
            result = run_side(commands[name](os.path.join(work_dir, label)),
                              os.path.join(work_dir, label + ".log"))
            runs[name].append(result)
            print("rep %d %-23s %s" % (rep + 1, name, json.dumps({k: round(v, 4) for k, v in result.items()})),
                  file=sys.stderr, flush=True)
    return runs


# ----------------------------------------------------------------------------------------------
# The floor: multiply-adds of the network

def net_macs(model, num_classes):
    """Multiply-adds of one forward pass of one image, per layer in order (conv and dense)."""
    import mxnet as mx

    import models

    net = models.build(model, num_classes)
    net.initialize()
    macs = []

    def count(block, inputs, output):
        w = block.weight.shape  # conv (out, in, kh, kw) or dense (out, in)
        spatial = output.shape[2] * output.shape[3] if output.ndim == 4 else 1
        macs.append(int(spatial * w[0] * w[1] * (w[2] * w[3] if len(w) == 4 else 1)))

    for block in _leaves(net):
        if isinstance(block, (mx.gluon.nn.Conv2D, mx.gluon.nn.Dense)):
            block.register_forward_hook(count)
    net(mx.nd.zeros((2, 3, 32, 32)))  # 2 images: BatchNorm needs a batch, hooks see shapes
    return macs


def _leaves(block):
    children = list(block._children.values())
    return [block] if not children else [leaf for c in children for leaf in _leaves(c)]


def run_flops(args):
    """FLOPs of the whole run: 3 passes per training image (forward, gradient of the input, of
    the weights; the first layer needs no input gradient), 1 per test image (6 more for
    test-time augmentation at the recipe's --tta-level 2, once), 2 FLOPs per MAC."""
    import numpy as np

    import models
    from data import load_cifar10, parse_classes

    classes = parse_classes(args.classes)
    _, train_y, _, test_y = load_cifar10(args.data_dir, progress=False)
    n_train, n_test = int(np.isin(train_y, classes).sum()), int(np.isin(test_y, classes).sum())
    recipe = recipes.get(args.recipe)
    macs = net_macs(recipe.network or models.SPEC_RESNET, len(classes))
    train, test = 3 * sum(macs) - macs[0], sum(macs)
    tta = 6 * n_test * test if recipe.defaults().get("tta_level") else 0
    return 2 * (args.epochs * (n_train * train + n_test * test) + tta)


def measure_gemm_gflops(size=4096, reps=5):
    """This machine's FP32 matrix-multiply rate through MXNet's oneDNN (a 4096^3 product)."""
    import mxnet as mx

    a, b = mx.nd.random.uniform(shape=(size, size)), mx.nd.random.uniform(shape=(size, size))
    mx.nd.FullyConnected(a, b, num_hidden=size, no_bias=True).wait_to_read()
    start = time.perf_counter()
    for _ in range(reps):
        c = mx.nd.FullyConnected(a, b, num_hidden=size, no_bias=True)
    c.wait_to_read()
    return 2 * size ** 3 * reps / (time.perf_counter() - start) / 1e9


# ----------------------------------------------------------------------------------------------
# Report

def _median(runs, key):
    values = [r[key] for r in runs]
    return statistics.median(values), min(values), max(values)


def machine():
    """The line that names what the sides ran on: the CPU, its cores, where bfloat16 ran, MXNet's
    engine, the date (figures compare only within one machine and run)."""
    setup = runtime.setup()
    return "%s, %d cores; AMX %s; bfloat16 on %s kernels; MXNet engine %s; %s" % (
        setup.cpu.name, setup.cpu.cores, setup.amx.status, cpu.bf16_kernels(setup.cpu, setup.amx) or "reference",
        setup.engine, time.strftime("%Y-%m-%d"))


def report(args, runs, flops, gemm_gflops, on=""):
    """The table and ratios of the runs; on: the machine() line that heads it."""
    other = " ".join([os.path.basename(args.other or OTHER)] + args.other_args.split())
    names = {MXNET: "train_cifar10.py (MXNet, float32)", MXNET_AMP: "train_cifar10.py --amp (MXNet, mixed precision)",
             OTHER: other}
    lines = [on, "recipe %s, classes %s, %g epochs, %d run(s) each, alternating; median (min-max)"
             % (args.recipe, args.classes, args.epochs, args.reps), "",
             "| side | wall to last epoch s | wall to exit s | training time s | test acc | TTA test acc "
             "| peak RSS GiB |",
             "|---|---|---|---|---|---|---|"]
    for name, side in runs.items():
        cells = ["%.1f (%.1f-%.1f)" % _median(side, key) for key in ("wall", "exit", "train_time")]
        cells += ["%.4f (%.4f-%.4f)" % _median(side, key) if _median(side, key)[1] >= 0 else "-"
                  for key in ("test_acc", "tta_test_acc")]  # -1: not measured
        cells += ["%.2f (%.2f-%.2f)" % _median(side, "rss_gib")]
        lines.append("| %s | %s |" % (names[name], " | ".join(cells)))
    first = MXNET if MXNET in runs else MXNET_AMP
    first_wall = _median(runs[first], "wall")[0]
    lines.append("")
    for side in (MXNET, MXNET_AMP):
        if OTHER in runs and side in runs:
            lines.append("%s / %s wall time: %.2f to the last epoch, %.2f to exit"
                         % ((side, other) + tuple(_median(runs[side], key)[0] / _median(runs[OTHER], key)[0]
                                                  for key in ("wall", "exit"))))
    if MXNET_AMP in runs and MXNET in runs:
        lines.append("--amp / float32 wall time: %.2f to the last epoch, "
                     "%.2f to exit" % tuple(_median(runs[MXNET_AMP], key)[0] / _median(runs[MXNET], key)[0]
                                            for key in ("wall", "exit")))
    lines.append("floor: %.2f TFLOP at this machine's measured FP32 GEMM rate (%.0f GFLOP/s) = %.1f s; "
                 "%s is %.2fx" % (flops / 1e12, gemm_gflops, flops / gemm_gflops / 1e9,
                                    first, first_wall / (flops / gemm_gflops / 1e9)))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Where train_cifar10.py's time goes (--breakdown)

def breakdown(args):
    """Times each phase of a default run of train_cifar10.py in this process, with the training
    code's own functions."""
    start = time.perf_counter()
    runtime.prepare()
    import mxnet as mx
    from data import CIFAR10_CLASSES, batches, load_cifar10, num_batches, parse_classes, prepare
    from training.config import RunConfig
    from training.distributed import Worker
    from training.loop import evaluate, train_one_epoch
    from training.state import build_state

    phases = {"import mxnet and the training code": time.perf_counter() - start}
    t = time.perf_counter()
    config = RunConfig(classes=tuple(parse_classes(args.classes)), no_comet=True)
    dataset = prepare(*load_cifar10(args.data_dir, progress=False), classes=config.classes,
                      class_names=CIFAR10_CLASSES)
    phases["read and normalise the data"] = time.perf_counter() - t
    state = build_state(config, dataset, [mx.cpu()], Worker("device", "device"))
    x, y, bs = dataset.train_x, dataset.train_y, config.batch_size

    train_one_epoch(state, x, y, bs)  # warm-up: graph building, memory planning
    full = train_one_epoch(state, x, y, bs)["epoch_time"]
    n_steps = num_batches(x.shape[0], bs)

    # The same steps on batches gathered beforehand, without the loss and accuracy tallies.
    ready = list(batches(x, y, bs, state.rng))
    mx.nd.waitall()
    t = time.perf_counter()
    for data, label in ready:
        with mx.autograd.record():
            loss = state.loss_fn(state.net(data), label)
        loss.backward()
        state.trainer.step(data.shape[0])
    mx.nd.waitall()
    compute = time.perf_counter() - t

    t = time.perf_counter()
    evaluate(state.net, dataset.test_x, dataset.test_y, state.ctx, bs)
    phases["evaluation, per epoch"] = time.perf_counter() - t
    phases["training epoch (%d steps)" % n_steps] = full
    lines = ["| phase | seconds |", "|---|---|"]
    lines += ["| %s | %.2f |" % item for item in phases.items()]
    lines += ["", "per training step: %.1f ms in the epoch loop, %.1f ms compute only; data loading and "
              "bookkeeping %.1f ms = %.1f%% of the step"
              % (1e3 * full / n_steps, 1e3 * compute / n_steps, 1e3 * (full - compute) / n_steps,
                 100 * (full - compute) / full)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------

def build_parser():
    p = ArgumentParser(__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="folder holding cifar-10-batches-bin/")
    p.add_argument("--classes", default="0,1", help="'0,1' (the spec's 2-class task) or 'all'")
    p.add_argument("--epochs", type=float, default=5, help="each side's --epochs")
    p.add_argument("--recipe", default=recipes.DEFAULT, choices=recipes.names(),
                   help="train_cifar10.py's --recipe; any but %s trains all ten classes (--classes is set to all)"
                        % recipes.DEFAULT)
    p.add_argument("--reps", type=int, default=3, help="runs of each side")
    p.add_argument("--seed", type=int, default=None, help="both sides' --seed (none: each side's own default)")
    p.add_argument("--other", default=None, metavar="SCRIPT",
                   help="the script to run beside train_cifar10.py (none: train_cifar10.py only)")
    p.add_argument("--other-python", default=None, help="the Python that runs --other (none: this Python)")
    p.add_argument("--other-args", default="", metavar="'ARGS'",
                   help="more arguments for --other, e.g. --other-args='--bf16 --channels-last'")
    p.add_argument("--amp", action="store_true",
                   help="also run train_cifar10.py with --amp (mixed precision: bfloat16 on a CPU with "
                        "AVX512_BF16 or AMX)")
    p.add_argument("--amp-only", action="store_true", help="run train_cifar10.py with --amp only (no float32 side)")
    p.add_argument("--breakdown", action="store_true", help="time the phases of a train_cifar10.py run instead")
    return p


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.recipe != recipes.DEFAULT:
        args.classes = "all"
    if args.breakdown:
        print(breakdown(args))
        return 0
    with tempfile.TemporaryDirectory(prefix="benchmark-") as work_dir:
        runs = alternate(args, work_dir)
    runtime.prepare()  # now: the runs above started with the environment as given
    print(report(args, runs, run_flops(args), measure_gemm_gflops(), on=machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
