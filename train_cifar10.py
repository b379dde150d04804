#!/usr/bin/env python3
"""Train the spec'd simplified ResNet on CIFAR-10 with MXNet Gluon.

    python train_cifar10.py --num-gpus 1 --epochs 5     # on GPU 0
    python train_cifar10.py --num-gpus 0 --classes 0,1  # CPU, the spec's 2-class task

Prints one JSON line per epoch on stdout; messages and the progress bar go to stderr.
"""
import argparse
import os
import sys

if not (3, 8) <= sys.version_info[:2] <= (3, 11):
    sys.exit("error: Python %d.%d is not supported: MXNet 1.9.1 needs numpy<1.24, which has no "
             "wheels for Python 3.12 and newer. Use Python 3.8-3.11." % sys.version_info[:2])

# MXNet reads OMP_NUM_THREADS once, when it is first imported, and by default uses only half the
# cores; an epoch on a 2-core CPU takes half the time with all of them. A user's setting wins.
CPU_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
os.environ.setdefault("OMP_NUM_THREADS", str(CPU_CORES or 1))

try:
    import mxnet as mx  # noqa: E402  (after OMP_NUM_THREADS)
except OSError as e:  # mxnet-cu112 without the CUDA 11 libraries it links
    sys.exit("error: MXNet could not load its library (%s). mxnet-cu112 needs the CUDA 11 runtime "
             "libraries and an NVIDIA driver (README, 'GPU machines'); on a machine without a GPU "
             "install mxnet==1.9.1 instead." % e)
import numpy as np  # noqa: E402

from data import (CLASS_NAMES, DataError, default_data_dir, load_cifar10, num_batches,  # noqa: E402
                  parse_classes, prepare)
from data.cifar10 import URL  # noqa: E402
from models import SpecResNet  # noqa: E402
from training import TrainState, fit, make_trainer  # noqa: E402


# ----------------------------------------------------------------------------------------------
# Command line

def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %s" % text)
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more, got %s" % text)
    return value


def _classes(text):
    try:
        return parse_classes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--data-dir", default=default_data_dir(),
                       help="where CIFAR-10 is cached; a folder holding the extracted binary "
                            "batches (cifar-10-batches-bin) is used as it is")
    group.add_argument("--data-url", default=URL,
                       help="where to download cifar-10-binary.tar.gz from (a mirror must serve "
                            "the identical file: its md5 is checked)")
    group.add_argument("--classes", type=_classes, default="all",
                       help="comma-separated class indices or names to train on, relabelled 0..k-1 "
                            "in the order given; the spec's task is 0,1 (%s)"
                            % ", ".join("%d=%s" % c for c in enumerate(CLASS_NAMES)))


def add_training_args(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=_positive_int, default=5, help="passes over the training set")
    group.add_argument("--batch-size", type=_positive_int, default=128,
                       help="images per update, split across all devices (also the evaluation "
                            "batch: the network normalises with batch statistics)")
    group.add_argument("--lr", type=float, default=0.1,
                       help="initial learning rate; it decays linearly to 0 over the whole run, "
                            "updated every iteration")
    group.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (not Nesterov)")
    group.add_argument("--seed", type=int, default=42,
                       help="seeds initialisation and shuffling; the same seed repeats a CPU run")


def add_device_args(parser):
    group = parser.add_argument_group("devices")
    group.add_argument("--num-gpus", type=_non_negative_int, default=0,
                       help="train on GPUs 0..N-1 (the batch is split across them); 0 trains on the CPU")
    group.add_argument("--kv-store", default="device", choices=("device", "local"),
                       help="how gradients of several devices are summed: 'device' on the GPUs, "
                            "'local' on the CPU (unused on one device)")


def add_output_args(parser):
    group = parser.add_argument_group("output")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bar or messages on stderr (the JSON lines stay)")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_args(parser)
    add_training_args(parser)
    add_device_args(parser)
    add_output_args(parser)
    return parser


# ----------------------------------------------------------------------------------------------
# Wiring

def make_contexts(num_gpus):
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


def build_state(args, dataset, ctx):
    """Seeded, initialised, hybridized network and its Trainer."""
    mx.random.seed(args.seed, ctx="all")
    net = SpecResNet(num_classes=dataset.num_classes)
    net.initialize(ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    total_updates = args.epochs * num_batches(dataset.train_x.shape[0], args.batch_size,
                                              min_size=len(ctx))
    trainer = make_trainer(net, args.lr, args.momentum, total_updates, kvstore=args.kv_store)
    return TrainState(net=net, trainer=trainer, ctx=ctx, rng=np.random.RandomState(args.seed))


def say(args, message):
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ctx = make_contexts(args.num_gpus)
    except ValueError as e:
        parser.error(str(e))
    try:
        raw = load_cifar10(args.data_dir, url=args.data_url, progress=not args.quiet)
    except DataError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    dataset = prepare(*raw, classes=args.classes, class_names=CLASS_NAMES)
    say(args, "training on %s: %d training / %d test images of %d classes (%s)"
        % (", ".join(map(str, ctx)), dataset.train_x.shape[0], dataset.test_x.shape[0],
           dataset.num_classes, ", ".join(dataset.class_names)))
    state = build_state(args, dataset, ctx)
    try:
        fit(state, dataset, args.epochs, args.batch_size, show_progress=not args.quiet)
    except KeyboardInterrupt:
        print("interrupted after %d of %d epochs" % (state.epoch, args.epochs), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
