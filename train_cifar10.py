#!/usr/bin/env python3
"""Train the spec'd simplified ResNet on CIFAR-10 with MXNet Gluon.

    python train_cifar10.py --num-gpus 1 --epochs 5     # on GPU 0
    python train_cifar10.py --num-gpus 0 --classes 0,1  # CPU, the spec's 2-class task

Prints one JSON line per epoch on stdout; messages and the progress bar go to stderr.
"""
import argparse
import functools
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, replace
from importlib import metadata

if not (3, 8) <= sys.version_info[:2] <= (3, 11):
    sys.exit("error: Python %d.%d is not supported: MXNet 1.9.1 needs numpy<1.24, which has no "
             "wheels for Python 3.12 and newer. Use Python 3.8-3.11." % sys.version_info[:2])

import cpu_threads  # noqa: E402

cpu_threads.use_all_cores()  # before MXNet is imported

try:
    import mxnet as mx  # noqa: E402  (after OMP_NUM_THREADS)
except OSError as e:  # mxnet-cu112 without the CUDA 11 libraries it links
    sys.exit("error: MXNet could not load its library (%s). mxnet-cu112 needs the CUDA 11 runtime "
             "libraries and an NVIDIA driver (README, 'GPU machines'); on a machine without a GPU "
             "install mxnet==1.9.1 instead." % e)
import numpy as np  # noqa: E402

from data import (CLASS_NAMES, LAYOUTS, DataError, augment, class_names,  # noqa: E402
                  center_crop, default_data_dir, fetch, list_folder, load, load_image_folder,
                  load_records, num_batches, parse_classes, prepare, record_classes)
import distributed  # noqa: E402
import models  # noqa: E402
import checkpoint  # noqa: E402
from tracking import CometRun, RunLog, SilentLog, comet_disabled  # noqa: E402
from schedules import make_schedule  # noqa: E402
from training import Speedometer, TrainState, confusion_matrix, fit, make_trainer  # noqa: E402


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


def _epoch_list(text):
    try:
        epochs = [int(e) for e in text.split(",") if e.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected epochs like 100,150, got %r" % text)
    if any(e < 1 for e in epochs):
        raise argparse.ArgumentTypeError("epochs must be at least 1, got %r" % text)
    return sorted(epochs)


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="cifar10", choices=sorted(LAYOUTS),
                       help="CIFAR-10 or CIFAR-100 (its official binary release)")
    group.add_argument("--coarse-labels", action="store_true",
                       help="CIFAR-100: train on the 20 superclasses instead of the 100 classes")
    group.add_argument("--data-dir", default=None,
                       help="where the dataset is cached; a folder holding the extracted binary "
                            "files (e.g. cifar-10-batches-bin) is used as it is; None: "
                            "$MXNET_HOME/datasets/DATASET, i.e. %s" % default_data_dir())
    group.add_argument("--data-url", default=None,
                       help="where to download the dataset's archive from (a mirror must serve "
                            "the identical file: its md5 is checked); None: the official URL")
    group.add_argument("--classes", default="all",
                       help="comma-separated class indices or names to train on, relabelled 0..k-1 "
                            "in the order given; the spec's task is 0,1 (CIFAR-10: %s)"
                            % ", ".join("%d=%s" % c for c in enumerate(CLASS_NAMES)))
    own = group.add_mutually_exclusive_group()
    own.add_argument("--image-folder", default=None, metavar="ROOT",
                     help="train on your images instead: ROOT/train/<class>/*.png|jpg and "
                          "ROOT/test/<class>/..., classes in sorted order, resized to 32x32")
    own.add_argument("--rec-prefix", default=None, metavar="PREFIX",
                     help="train on RecordIO files packed by pack_images.py: PREFIX_train.rec, "
                          "PREFIX_test.rec (with .idx) and PREFIX_classes.txt")


def add_training_args(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=_positive_int, default=5, help="passes over the training set")
    group.add_argument("--batch-size", type=_positive_int, default=128,
                       help="images per update and worker, split across its devices (also the "
                            "evaluation batch: the network normalises with batch statistics); a "
                            "dist_sync update averages the batches of all workers")
    group.add_argument("--lr", type=float, default=0.1,
                       help="initial learning rate (after any warmup), updated every iteration")
    group.add_argument("--momentum", type=float, default=0.9, help="momentum of sgd or nag")
    group.add_argument("--seed", type=int, default=42,
                       help="seeds initialisation and shuffling; the same seed repeats a CPU run")


def add_recipe_args(parser):
    group = parser.add_argument_group(
        "model and recipe", "the defaults are the spec's network and procedure; GluonCV's CIFAR "
        "recipe is e.g. --model cifar_resnet20_v1 --augment --optimizer nag --wd 1e-4 "
        "--lr-mode step --lr-decay-epoch 100,150 --epochs 200")
    group.add_argument("--model", default="spec",
                       help="'spec' (the spec'd network), 'sub-inception-rrelu' or "
                            "'inception-bn-small' (28x28 crops), or a GluonCV model zoo name such "
                            "as cifar_resnet20_v1, cifar_resnet56_v1, cifar_wideresnet16_10")
    group.add_argument("--optimizer", default="sgd", choices=("sgd", "nag"),
                       help="sgd: plain momentum; nag: Nesterov momentum")
    group.add_argument("--wd", type=float, default=0.0, help="weight decay")
    group.add_argument("--lr-mode", default="linear", choices=("linear", "step", "constant"),
                       help="linear: to 0 at the end of the run; step: x --lr-factor at each "
                            "--lr-decay-epoch and every --lr-decay-period epochs; constant")
    group.add_argument("--lr-factor", type=float, default=0.1, help="step mode: the factor")
    group.add_argument("--lr-decay-epoch", type=_epoch_list, default=[], metavar="E1,E2",
                       help="step mode: the epochs at whose start the rate is multiplied")
    group.add_argument("--lr-decay-period", type=_non_negative_int, default=0,
                       help="step mode: multiply every N epochs (0: only at --lr-decay-epoch)")
    group.add_argument("--warmup-epochs", type=_non_negative_int, default=0,
                       help="epochs of linear warmup from 0 to --lr before the schedule")
    group.add_argument("--augment", action="store_true",
                       help="pad 4 pixels, random 32x32 crop and random horizontal flip of every "
                            "training image (GluonCV's CIFAR augmentation)")


def add_device_args(parser):
    group = parser.add_argument_group("devices")
    group.add_argument("--num-gpus", type=_non_negative_int, default=0,
                       help="train on GPUs 0..N-1 (the batch is split across them); 0 trains on the CPU")
    group.add_argument("--kv-store", default="device", choices=distributed.KVSTORES,
                       help="how gradients are summed: over the GPUs of this machine 'device' "
                            "(on the GPUs), 'nccl' or 'local' (on the CPU), unused on one device; "
                            "dist_* for several worker processes started by launch.py, each "
                            "training on its shard of the data")


def add_checkpoint_args(parser):
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--model-prefix", default=None,
                       help="save checkpoints as PREFIX-NNNN.params/.states/.json after epoch NNNN")
    group.add_argument("--save-period", type=_positive_int, default=1,
                       help="save every N epochs (and after the last one)")
    group.add_argument("--load-epoch", type=_non_negative_int, default=None,
                       help="resume from PREFIX-NNNN (with --model-prefix) and train on to --epochs; "
                            "the schedule continues from that update count, scaled to --lr")
    group.add_argument("--finetune", default=None, metavar="MODEL",
                       help="start from the features of a trained model (a checkpoint PREFIX-NNNN or "
                            "an export PATH) with a new output layer for --classes")
    group.add_argument("--freeze-features", action="store_true",
                       help="with --finetune: train only the new output layer")
    group.add_argument("--export", default=None, metavar="PATH",
                       help="after training, write the network for deployment: PATH-symbol.json, "
                            "PATH-0000.params, PATH-meta.json (classes, normalisation); see predict.py")


def add_output_args(parser):
    group = parser.add_argument_group("output and tracking")
    group.add_argument("--log-interval", type=_positive_int, default=None, metavar="K",
                       help="every K batches print images/s and the running train loss on "
                            "stderr (MXNet's Speedometer; each report waits for the device)")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bar or messages on stderr (the JSON lines stay)")
    group.add_argument("--run-name", default=None,
                       help="name of the run on Comet and of its folder; None: made of model, "
                            "classes and start time, e.g. spec-resnet_c0-1_20260101-120000")
    group.add_argument("--output-dir", default=None,
                       help="the run's folder (config.json, metrics.jsonl, Comet archive); "
                            "None: runs/RUN_NAME")
    group.add_argument("--no-comet", action="store_true",
                       help="no Comet.ml at all (also COMET_DISABLE=1); the run folder stays")
    group.add_argument("--comet-project", default="cifar10-gluon", help="Comet project")
    group.add_argument("--comet-workspace", default=None,
                       help="Comet workspace; None: your default one")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_args(parser)
    add_training_args(parser)
    add_recipe_args(parser)
    add_device_args(parser)
    add_checkpoint_args(parser)
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


def build_state(args, dataset, ctx, workers):
    """Seeded, initialised, hybridized network and its Trainer."""
    mx.random.seed(args.seed, ctx="all")
    net = models.build(args.model, dataset.num_classes, ctx)
    models.initialize(net, args.model, ctx)
    if args.finetune:
        checkpoint.load_features(args.finetune, net)
        if args.freeze_features:
            net.features.collect_params().setattr("grad_req", "null")
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, args.lr, args.momentum, kvstore=workers.kvstore,
                           update_on_kvstore=workers.update_on_kvstore, optimizer=args.optimizer,
                           wd=args.wd, schedule=schedule(args, dataset, ctx, workers))
    distributed.start_trainer(trainer, net, dataset.train_x[:len(ctx)].as_in_context(ctx[0]), workers)
    return TrainState(net=net, trainer=trainer, ctx=ctx, rng=np.random.RandomState(args.seed),
                      images_per_update=workers.images_per_update, drop_last=workers.asynchronous,
                      augment=train_augmentation(args, dataset))


def train_augmentation(args, dataset):
    """augment(batch, rng=...) for the training batches, or None: --augment's pad-and-crop with
    flip, or for the 28x28 Inception networks their recipe's random crop with mirror (always)."""
    size = models.input_size(args.model)
    if size < 32:
        return functools.partial(augment, mean=dataset.mean, std=dataset.std, pad=0, size=size)
    if args.augment:
        return functools.partial(augment, mean=dataset.mean, std=dataset.std)
    return None


def fit_input(args, dataset):
    """The dataset as the network sees it in evaluation: the Inception networks get the central
    28x28 of every test image."""
    size = models.input_size(args.model)
    if size == dataset.test_x.shape[2]:
        return dataset
    return replace(dataset, test_x=center_crop(dataset.test_x, size))


def schedule(args, dataset, ctx, workers):
    """The run's LR schedule, counted in updates as the optimizer counts them (on the servers for
    dist_async)."""
    steps = num_batches(dataset.train_x.shape[0], args.batch_size, min_size=len(ctx),
                        drop_last=workers.asynchronous)
    return make_schedule(args.lr_mode, args.lr, args.epochs, steps * workers.updates_per_step,
                         args.lr_factor, args.lr_decay_epoch, args.warmup_epochs,
                         args.lr_decay_period)


def classes_tag(classes, source):
    return "all" if classes == list(range(len(source.class_names))) else "-".join(map(str, classes))


def default_run_name(args, source):
    return "%s_c%s_%s" % (models.record_name(args.model), classes_tag(args.classes, source),
                          time.strftime("%Y%m%d-%H%M%S"))


def make_run_dir(path):
    """Creates the run folder; an existing one is never reused (a -2, -3 ... suffix is added)."""
    candidate, n = path, 1
    while True:
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = "%s-%d" % (path, n)


def _version(distribution):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_config(args, ctx, dataset, run_name, workers, source):
    """Every effective setting of the run, and what it ran on (never any secret)."""
    config = {k: v for k, v in vars(args).items() if k not in ("quiet",)}
    config.update({
        "run_name": run_name, "model": models.record_name(args.model), "dataset": source.name,
        "classes_tag": classes_tag(args.classes, source),
        "class_names": dataset.class_names, "num_classes": dataset.num_classes,
        "train_images": dataset.train_x.shape[0], "test_images": dataset.test_x.shape[0],
        "nesterov": args.optimizer == "nag", "weight_decay": args.wd,
        "lr_schedule": ("linear-to-zero" if args.lr_mode == "linear" else args.lr_mode)
        + (" after %d warmup epochs" % args.warmup_epochs if args.warmup_epochs else ""),
        "device": "gpu" if args.num_gpus else "cpu", "contexts": [str(c) for c in ctx],
        "num_devices": len(ctx), "num_workers": workers.num_workers,
        "global_batch_size": args.batch_size * workers.images_per_update,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "mean": dataset.mean.tolist(), "std": dataset.std.tolist(),
        "version_mxnet": mx.__version__, "version_gluoncv": _version("gluoncv"),
        "version_numpy": np.__version__, "version_comet_ml": _version("comet_ml"),
        "version_python": platform.python_version(), "host_cpu": platform.machine(),
    })
    return config


def open_run_log(args, config, run_dir):
    comet = None
    if not comet_disabled(args.no_comet):
        params = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in config.items()}
        tags = [config["model"], config["dataset"], "classes-" + config["classes_tag"],
                config["device"], "devices-%d" % config["num_devices"]]
        comet = CometRun(config["run_name"], args.comet_project, args.comet_workspace,
                         os.path.join(run_dir, "comet"), params, tags)
    return RunLog(run_dir, config, comet)


def check_devices(args, parser):
    """The contexts and the Workers of this process; exits with a usage error if they cannot be."""
    if args.kv_store == "nccl" and args.num_gpus == 0:
        parser.error("--kv-store nccl sums gradients over GPUs: it needs --num-gpus 1 or more")
    if args.kv_store == "dist_async" and args.model_prefix:
        parser.error("--kv-store dist_async keeps the optimizer's state on the servers, where it "
                     "cannot be saved: checkpoints (--model-prefix) need dist_sync")
    try:
        ctx = make_contexts(args.num_gpus)
        return ctx, distributed.connect(args.kv_store, os.environ)
    except (ValueError, distributed.LaunchError) as e:
        parser.error(str(e))


@dataclass
class DataSource:
    """The data the flags name, listed but not yet loaded."""
    name: str  # recorded in the config and as a Comet tag
    class_names: list
    load: object  # () -> (train_x, train_y, test_x, test_y): uint8 NCHW images, int labels


def open_source(args):
    """CIFAR-10 (the default), an image folder or packed records. Raises DataError."""
    if args.image_folder:
        names, _ = list_folder(args.image_folder)
        return DataSource("image-folder", names, functools.partial(load_image_folder, args.image_folder))
    if args.rec_prefix:
        return DataSource("recordio", record_classes(args.rec_prefix),
                          functools.partial(load_records, args.rec_prefix))
    layout = LAYOUTS[args.dataset]
    data_dir = args.data_dir or default_data_dir(layout)
    label = "coarse" if args.coarse_labels else "fine"
    load_it = functools.partial(load, layout, data_dir, url=args.data_url, progress=not args.quiet,
                                label=label)
    if layout.key == "cifar10":  # fixed names: --classes is checked before any download
        return DataSource(layout.key, list(CLASS_NAMES), load_it)
    names = class_names(layout, fetch(layout, data_dir, args.data_url, progress=not args.quiet), label)
    return DataSource(layout.key, names, load_it)


def resolve_classes(args, parser, source):
    """--classes as indices into the source's classes; a usage error if it names others."""
    try:
        args.classes = parse_classes(args.classes, source.class_names)
    except ValueError as e:
        parser.error("argument --classes: %s" % e)


def check_recipe(args, parser):
    """Usage errors of the model, data and schedule flags, before any data work."""
    if args.coarse_labels and args.dataset != "cifar100":
        parser.error("--coarse-labels goes with --dataset cifar100")
    if (args.image_folder or args.rec_prefix) and args.dataset != "cifar10":
        parser.error("--dataset names a CIFAR release; --image-folder and --rec-prefix are yours: "
                     "use one of them")
    if args.lr_mode == "step" and not (args.lr_decay_epoch or args.lr_decay_period):
        parser.error("--lr-mode step needs --lr-decay-epoch (e.g. 100,150) or --lr-decay-period")
    if args.lr_mode != "step" and (args.lr_decay_epoch or args.lr_decay_period):
        parser.error("--lr-decay-epoch and --lr-decay-period go with --lr-mode step")
    if args.warmup_epochs >= args.epochs:
        parser.error("--warmup-epochs %d leaves no epoch to train after it with --epochs %d"
                     % (args.warmup_epochs, args.epochs))
    try:
        models.check_name(args.model)  # before any data work; the network is built later
    except ValueError as e:
        parser.error(str(e))


def read_resume_point(args, parser, source):
    """The record of the checkpoint to resume from (None for a fresh run); checked before data work."""
    if args.freeze_features and not args.finetune:
        parser.error("--freeze-features goes with --finetune")
    if args.load_epoch is None:
        return None
    if args.model_prefix is None:
        parser.error("--load-epoch needs --model-prefix, the prefix the checkpoints were saved with")
    if args.finetune:
        parser.error("--load-epoch continues a run; --finetune starts a new one: use one of them")
    if args.load_epoch >= args.epochs:
        parser.error("--load-epoch %d leaves nothing to train with --epochs %d: raise --epochs"
                     % (args.load_epoch, args.epochs))
    record = checkpoint.read(args.model_prefix, args.load_epoch)
    model = models.record_name(args.model)
    names = [source.class_names[c] for c in args.classes]
    if record["model"] != model or record["class_names"] != names:
        raise checkpoint.CheckpointError(
            "%s-%04d holds %s for classes %s; this run is %s for classes %s (--classes)"
            % (args.model_prefix, args.load_epoch, record["model"], ",".join(record["class_names"]),
               model, ",".join(names)))
    return record


def resume(args, state, record):
    # The saved optimizer brings its own schedule; this run's (the same curve unless --lr, --epochs
    # or another schedule flag changed: two-stage training) is put back, and continues from the
    # saved update count either way.
    run_schedule = state.trainer.optimizer.lr_scheduler
    checkpoint.restore(args.model_prefix, record, state)
    state.trainer.optimizer.lr_scheduler = run_schedule


def model_meta(dataset, config):
    """What a checkpoint or an export needs beside the weights."""
    return {"model": config["model"], "num_classes": dataset.num_classes,
            "input_size": dataset.test_x.shape[2],
            "class_names": dataset.class_names, "mean": dataset.mean.tolist(),
            "std": dataset.std.tolist(), "config": config}


def make_saver(args, dataset, config):
    if not args.model_prefix:
        return None
    return checkpoint.Saver(args.model_prefix, args.save_period, model_meta(dataset, config))


def interrupt(signum, frame):
    """SIGTERM stops training as Ctrl-C does (a KeyboardInterrupt), so the same cleanup runs."""
    raise KeyboardInterrupt


def interrupted_message(args, epochs_done):
    message = "interrupted after %d of %d epochs." % (epochs_done, args.epochs)
    saved = checkpoint.latest(args.model_prefix) if args.model_prefix else None
    if saved is None:
        return message + " No checkpoint was saved (--model-prefix saves them)."
    return message + (" The latest checkpoint is %s-%04d: resume with the same command and "
                      "--load-epoch %d." % (args.model_prefix, saved, saved))


def finish_run(args, state, dataset, run_log, workers):
    if not workers.chief:
        return
    confusion = confusion_matrix(state.net, dataset.test_x, dataset.test_y, state.ctx,
                                 args.batch_size, dataset.num_classes)
    run_log.finish(confusion, dataset.class_names, str(state.net))


def say(args, message):
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def open_outputs(args, ctx, dataset, workers, source):
    """(config, run log, saver): the run folder, Comet and checkpoints, written by rank 0 only."""
    if not workers.chief:
        return None, SilentLog(), None
    run_name = args.run_name or default_run_name(args, source)
    run_dir = make_run_dir(args.output_dir or os.path.join("runs", run_name))
    say(args, "training on %s%s: %d training / %d test images of %d classes (%s); run folder %s"
        % (", ".join(map(str, ctx)),
           " x %d workers" % workers.num_workers if workers.distributed else "",
           dataset.train_x.shape[0], dataset.test_x.shape[0], dataset.num_classes,
           ", ".join(dataset.class_names), run_dir))
    config = run_config(args, ctx, dataset, run_name, workers, source)
    return config, open_run_log(args, config, run_dir), make_saver(args, dataset, config)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_recipe(args, parser)
    ctx, workers = check_devices(args, parser)
    if not workers.chief:
        args.quiet = True
    try:
        source = open_source(args)
        resolve_classes(args, parser, source)
        resume_point = read_resume_point(args, parser, source)
        dataset = fit_input(args, distributed.shard(
            prepare(*source.load(), classes=args.classes, class_names=source.class_names), workers))
        state = build_state(args, dataset, ctx, workers)
    except (DataError, checkpoint.CheckpointError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    config, run_log, saver = open_outputs(args, ctx, dataset, workers, source)
    if resume_point is not None:
        resume(args, state, resume_point)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        fit(state, dataset, args.epochs, args.batch_size, run_log, saver, show_progress=not args.quiet,
            speedometer=Speedometer(args.log_interval) if args.log_interval and workers.chief else None)
    except KeyboardInterrupt:
        if saver is not None:
            saver.publish_pending()
        print(interrupted_message(args, state.epoch), file=sys.stderr)
        return 130
    finally:
        finish_run(args, state, dataset, run_log, workers)
    if args.export and workers.chief:
        say(args, "exported to %s" % checkpoint.export(state.net, args.export, model_meta(dataset, config),
                                                               sample=dataset.test_x[:2].as_in_context(ctx[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
