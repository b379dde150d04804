"""train_cifar10.py's flags: their definitions (`add_*_args`, one titled group each), and
`parse(argv)`, the one way in: the flags, checked (train_checks.py), with a recipe's defaults.

A usage error is one line and exit code 2 (common/cli.py's ArgumentParser): flags that cannot go
together, flags that would change nothing, devices that are not there.
"""
import argparse
import os

import models
from common.cli import ArgumentParser, non_negative_int, positive_int, positive_number
from data import CIFAR10_CLASSES, LAYOUTS
from training import checkpoint, comet, config as run_config, distributed, precision, tta
from training.config import RunConfig
from training.devices import contexts
from training import recipes

from . import train_checks

DEFAULTS = RunConfig()  # the flags' defaults


def _model_name(text):
    try:
        return models.canonical_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _int_list(text, what, example):
    """The integers of 'A,B,C'; an argparse error naming what they should be otherwise."""
    try:
        return [int(i) for i in text.split(",") if i.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected %s like %s, got %r" % (what, example, text))


def _seed_list(text):
    seeds = _int_list(text, "seeds", "1,2,3")
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError("expected distinct seeds like 1,2,3, got %r" % text)
    return seeds


def _gpu_list(text):
    ids = _int_list(text, "GPU ids", "0,2")
    if not ids or min(ids) < 0:
        raise argparse.ArgumentTypeError("expected GPU ids (0 or more) like 0,2, got %r" % text)
    if len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError("GPU ids listed twice in %r" % text)
    return ids


def _tag_list(text):
    tags = [t.strip() for t in text.split(",") if t.strip()]
    if not tags:
        raise argparse.ArgumentTypeError("expected tags like baseline,lr-test, got %r" % text)
    return tags


def _epoch_list(text):
    epochs = _int_list(text, "epochs", "100,150")
    if any(e < 1 for e in epochs):
        raise argparse.ArgumentTypeError("epochs must be at least 1, got %r" % text)
    return sorted(epochs)


LATEST = train_checks.LATEST


def epoch_or_latest(text):
    if text == LATEST:
        return LATEST
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("expected an epoch (0 or more) or latest, got %r" % text) from None


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default=DEFAULTS.dataset, choices=sorted(LAYOUTS),
                       help="CIFAR-10 or CIFAR-100 (its official binary release)")
    group.add_argument("--coarse-labels", action="store_true",
                       help="CIFAR-100: train on the 20 superclasses instead of the 100 classes")
    group.add_argument("--data-dir", default=None,
                       help="where the dataset is cached; a folder holding the extracted binary "
                            "files (e.g. cifar-10-batches-bin) is used as it is; None: "
                            "$MXNET_HOME/datasets/DATASET ($MXNET_HOME: ~/.mxnet unless set)")
    group.add_argument("--data-url", default=None,
                       help="where to download the dataset's archive from (a mirror must serve "
                            "the identical file: its md5 is checked); None: the official URL")
    group.add_argument("--classes", default="all",
                       help="comma-separated class indices or names to train on, relabelled 0..k-1 "
                            "in the order given; the spec's task is 0,1 (CIFAR-10: %s)"
                            % ", ".join("%d=%s" % c for c in enumerate(CIFAR10_CLASSES)))
    own = group.add_mutually_exclusive_group()
    own.add_argument("--image-folder", default=None, metavar="ROOT",
                     help="train on your images instead: ROOT/train/<class>/*.png|jpg and "
                          "ROOT/test/<class>/..., classes in sorted order, resized to 32x32")
    own.add_argument("--rec-prefix", default=None, metavar="PREFIX",
                     help="train on RecordIO files packed by pack_images.py: PREFIX_train.rec, "
                          "PREFIX_test.rec (with .idx) and PREFIX_classes.txt")


def add_training_args(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=positive_number, default=DEFAULTS.epochs,
                       help="passes over the training set; a fraction ends within the last one "
                            "(e.g. 9.9: the recipe fast94's)")
    group.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size,
                       help="images per update and worker, split across its devices (also the "
                            "evaluation batch: the network normalises with batch statistics); a "
                            "dist_sync update averages the batches of all workers")
    group.add_argument("--lr", type=float, default=DEFAULTS.lr,
                       help="initial learning rate (after any warmup), updated every iteration")
    group.add_argument("--momentum", type=float, default=DEFAULTS.momentum, help="momentum of sgd or nag")
    group.add_argument("--seed", type=int, default=DEFAULTS.seed,
                       help="seeds initialisation and shuffling; the same seed repeats a CPU run")
    group.add_argument("--seeds", type=_seed_list, default=None, metavar="1,2,3",
                       help="run this configuration once per seed, in turn: each run its own "
                            "folder and Comet experiment (NAME-seedK), all in one --run-group; "
                            "checkpoint prefixes and exports get -seedK too")


def recipe_help(recipe):
    """--recipe's words for one recipe: what it is, and the defaults it gives the flags it
    does not fix."""
    defaults = ["--%s %s" % (dest.replace("_", "-"), value) for dest, value in recipe.defaults().items()
                if dest not in recipe.fixed_flags]
    return "%s: %s" % (recipe.name, recipe.summary) + (" (defaults %s)" % ", ".join(defaults) if defaults else "")


def network_help(row):
    recipes_for = recipes.for_network(row.name) if row.needs_its_recipe else []
    return "'%s'%s (%s%s)" % (row.name, "".join(" or '%s'" % a for a in row.aliases), row.summary,
                              "; --recipe %s" % " or ".join(recipes_for) if recipes_for else "")


def add_recipe_args(parser):
    group = parser.add_argument_group(
        "model and recipe", "the defaults are the spec's network and procedure; GluonCV's CIFAR "
        "recipe is e.g. --model cifar_resnet20_v1 --augment --optimizer nag --wd 1e-4 "
        "--lr-mode step --lr-decay-epoch 100,150 --epochs 200")
    group.add_argument("--recipe", default=DEFAULTS.recipe, choices=recipes.names(),
                       help="; ".join(recipe_help(recipes.get(name)) for name in recipes.names()))
    group.add_argument("--model", type=_model_name, default=DEFAULTS.model,
                       help=", ".join(network_help(row) for row in models.NETWORKS.values())
                       + ", or " + models.zoo.GLUONCV.summary + ", cifar_resnet56_v1, cifar_wideresnet16_10")
    group.add_argument("--optimizer", default=DEFAULTS.optimizer, choices=("sgd", "nag"),
                       help="sgd: plain momentum; nag: Nesterov momentum")
    group.add_argument("--wd", type=float, default=DEFAULTS.wd, help="weight decay")
    group.add_argument("--lr-mode", default=DEFAULTS.lr_mode, choices=("linear", "step", "constant"),
                       help="linear: to 0 at the end of the run; step: x --lr-factor at each "
                            "--lr-decay-epoch and every --lr-decay-period epochs; constant")
    group.add_argument("--lr-factor", type=float, default=DEFAULTS.lr_factor, help="step mode: the factor")
    group.add_argument("--lr-decay-epoch", type=_epoch_list, default=[], metavar="E1,E2",
                       help="step mode: the epochs at whose start the rate is multiplied")
    group.add_argument("--lr-decay-period", type=non_negative_int, default=DEFAULTS.lr_decay_period,
                       help="step mode: multiply every N epochs (0: only at --lr-decay-epoch)")
    group.add_argument("--warmup-epochs", type=non_negative_int, default=DEFAULTS.warmup_epochs,
                       help="epochs of linear warmup from 0 to --lr before the schedule")
    group.add_argument("--augment", action="store_true",
                       help="pad 4 pixels, random 32x32 crop and random horizontal flip of every "
                            "training image (GluonCV's CIFAR augmentation)")
    group.add_argument("--label-smoothing", type=float, default=DEFAULTS.label_smoothing,
                       help="train against labels smoothed by this fraction, spread over all classes")
    group.add_argument("--tta-level", type=int, default=DEFAULTS.tta_level, choices=tta.LEVELS,
                       help="test-time augmentation (airbench94's): 1 averages each test image's "
                            "logits with its mirror image's, 2 also with one-pixel translations; the "
                            "last epoch reports tta_test_acc beside test_acc, and predict.py uses it")


def add_device_args(parser):
    group = parser.add_argument_group("devices")
    group.add_argument("--num-gpus", type=non_negative_int, default=DEFAULTS.num_gpus,
                       help="train on GPUs 0..N-1 (the batch is split across them); 0 trains on the CPU")
    group.add_argument("--gpus", type=_gpu_list, default=None, metavar="0,2",
                       help="train on these GPU ids instead, as MXNet's examples choose them")
    group.add_argument("--kv-store", default=DEFAULTS.kv_store, choices=distributed.KVSTORES,
                       help="how gradients are summed: over the GPUs of this machine 'device' "
                            "(on the GPUs), 'nccl' or 'local' (on the CPU), unused on one device; "
                            "for several worker processes, each training on its shard of the "
                            "data: dist_* (MXNet's parameter server, started by launch.py) or "
                            "horovod (allreduce, started by horovodrun; one GPU per process)")
    group.add_argument("--amp", action="store_true",
                       help="automatic mixed precision (MXNet's AMP): convolutions and matrix "
                            "products in float16 on GPUs (with dynamic loss scaling) or bfloat16 "
                            "on CPUs with AVX512_BF16 or AMX; weights, checkpoints and exports "
                            "stay float32")
    group.add_argument("--amp-dtype", default=None, choices=precision.AMP_DTYPES,
                       help="with --amp: the low precision; None: float16 on GPUs, bfloat16 on CPUs")


def add_checkpoint_args(parser):
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--model-prefix", default=None,
                       help="save checkpoints as PREFIX-NNNN.params/.states/.json after epoch NNNN")
    group.add_argument("--save-period", type=positive_int, default=DEFAULTS.save_period,
                       help="save every N epochs (and after the last one)")
    group.add_argument("--load-epoch", type=epoch_or_latest, default=None, metavar="N|latest",
                       help="resume from PREFIX-NNNN (with --model-prefix) and train on to --epochs, in "
                            "that run's folder and Comet experiment; the schedule continues from that "
                            "update count, scaled to --lr. latest: the newest complete checkpoint")
    group.add_argument("--resume", action="store_const", dest="load_epoch", const=LATEST,
                       help="--load-epoch latest; where no checkpoint of --model-prefix exists yet, "
                            "the run starts from epoch 0 and says so (the same command starts and "
                            "continues a run)")
    group.add_argument("--finetune", default=None, metavar="MODEL",
                       help="start from the features of a trained model (a checkpoint PREFIX-NNNN or "
                            "an export PATH) with a new output layer for --classes")
    group.add_argument("--freeze-features", action="store_true",
                       help="with --finetune: train only the new output layer")
    group.add_argument("--export", default=None, metavar="PATH",
                       help="after training, write the network for deployment: PATH-symbol.json, "
                            "PATH-0000.params, PATH-meta.json (classes, normalisation), PATH.onnx; "
                            "the spec'd network normalising with the training set's population "
                            "statistics, so that it predicts each image on its own; see predict.py")
    group.add_argument("--export-batch-statistics", action="store_true",
                       help="with --export and the spec'd network: export it as the spec defines "
                            "it, normalising with each batch's statistics (its predictions depend on "
                            "the batch; for reproducing the spec's evaluation)")


def add_output_args(parser):
    group = parser.add_argument_group("output and tracking")
    group.add_argument("--log-interval", type=positive_int, default=None, metavar="K",
                       help="every K batches print images/s and the running train loss on "
                            "stderr (as MXNet's Speedometer does; each report waits for the device)")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bar or messages on stderr (the JSON lines stay)")
    group.add_argument("--run-name", default=None,
                       help="name of the run on Comet and of its folder; None: made of model, "
                            "classes and start time, e.g. spec-resnet_c0-1_20260101-120000")
    group.add_argument("--output-dir", default=None,
                       help="the run's folder (config.json, metrics.jsonl, Comet archive); "
                            "None: runs/RUN_NAME")
    group.add_argument("--run-group", default=None, metavar="NAME",
                       help="a group the run belongs to (Comet tag group-NAME, config.json): "
                            "runs to compare together; --seeds sets it")
    group.add_argument("--tags", type=_tag_list, default=[], metavar="TAG,TAG",
                       help="more Comet tags for the run (config.json keeps them); sweep.py tags "
                            "each trial with its study and number")
    group.add_argument("--no-comet", action="store_true",
                       help="no Comet.ml at all (also COMET_DISABLE=1); the run folder stays")
    group.add_argument("--comet-project", default=None,
                       help="Comet project; None: COMET_PROJECT_NAME or your Comet config "
                            "file's, else %s" % comet.DEFAULT_COMET_PROJECT)
    group.add_argument("--comet-workspace", default=None,
                       help="Comet workspace; None: COMET_WORKSPACE or your Comet config file's")
    group.add_argument("--no-comet-model", action="store_true",
                       help="with --export: do not log the exported files to Comet as a model")


def build_parser(parser_class=ArgumentParser):
    parser = parser_class("Train the spec'd simplified ResNet (or another network) on CIFAR-10 "
                            "with MXNet Gluon, on the CPU unless --num-gpus or --gpus name GPUs.")
    add_data_args(parser)
    add_training_args(parser)
    add_recipe_args(parser)
    add_device_args(parser)
    add_checkpoint_args(parser)
    add_output_args(parser)
    return parser


def find_resume(args, parser):
    """--load-epoch latest (--resume) made the newest complete checkpoint's epoch, or None where
    there is none yet; returns the line that says so, or None. A usage error if that epoch
    leaves nothing to train."""
    if args.load_epoch != LATEST:
        return None
    args.load_epoch = checkpoint.latest(args.model_prefix)
    if args.load_epoch is None:
        return ("nothing to resume: no checkpoint %s-NNNN yet; training from epoch 0"
                % args.model_prefix)
    if args.load_epoch >= args.epochs:
        parser.error("--resume: the newest checkpoint, %s-%04d, has all %g epochs: raise --epochs to "
                     "train on" % (args.model_prefix, args.load_epoch, args.epochs))
    return None


def parse(argv=None, parser_class=ArgumentParser):
    """(parser, flags): the command line parsed and checked, with --recipe's defaults in place; a
    usage error exits with code 2 (or is whatever parser_class.error does: sweep.py checks a
    trial's flags before it runs one)."""
    parser = build_parser(parser_class)
    args = parser.parse_args(argv)
    given = train_checks.given_flags(parser, argv)
    train_checks.apply_recipe(args, given)
    train_checks.check_recipe(args, given, parser)
    train_checks.check_flags(args, parser)
    train_checks.check_effect(args, given, parser)
    return parser, args


def open_devices(args, parser):
    """(contexts, Worker) of this process; a usage error if they cannot be had. (A GPU this MXNet
    cannot run on raises GpuError: a user error, exit code 1.)"""
    try:
        if args.kv_store == "horovod" and args.num_gpus:  # one GPU per process: its local rank's
            worker = distributed.connect(args.kv_store, os.environ)
            return contexts(gpus=[worker.local_rank]), worker
        return contexts(args.num_gpus, args.gpus), distributed.connect(args.kv_store, os.environ)
    except (ValueError, distributed.LaunchError) as e:
        parser.error(str(e))


def resolve_run(args, parser, source, worker):
    """The run's RunConfig, once its DataSource (open_source) names the classes; a usage error
    for --classes it does not have."""
    try:
        return run_config.resolve(args, source, chief=worker.chief)
    except ValueError as e:
        parser.error("argument --classes: %s" % e)
