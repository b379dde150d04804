"""train_cifar10.py's usage errors, all found before any data work: flags that cannot go
together (`check_flags`), flags that would change nothing (`check_effect`, naming what would give
them effect), and a recipe's defaults put in place of the flags it changes (`apply_recipe`).
"""
import argparse
import copy

import models
from training import comet, distributed, precision, recipes
from training.devices import device_type, gpu_ids


def apply_recipe(args, given):
    """The recipe's defaults (its flag_defaults and network) for the flags the command line
    left at theirs."""
    for dest, value in recipes.get(args.recipe).defaults().items():
        if dest not in given:
            setattr(args, dest, value)


def check_recipe(args, given, parser):
    recipe = recipes.get(args.recipe)
    if recipe.network is not None and args.model != recipe.network:
        parser.error("--recipe %s trains %s (its settings are made for that network): leave out "
                     "--model %s" % (recipe.name, recipe.network, args.model))
    if models.network(args.model).needs_its_recipe and recipe.network != args.model:
        parser.error("--model %s trains with a recipe made for it: give --recipe %s"
                     % (args.model, " or ".join(recipes.for_network(args.model))))
    for dest in sorted(set(recipe.fixed_flags) & given):
        parser.error("--%s would have no effect: with --recipe %s %s"
                     % (dest.replace("_", "-"), recipe.name, recipe.fixed_flags[dest]))
    error = recipe.usage_error(args)
    if error:
        parser.error(error)
    if not 0 <= args.label_smoothing < 1:
        parser.error("argument --label-smoothing: expected a fraction from 0 to below 1, got %g"
                     % args.label_smoothing)


LATEST = "latest"  # --load-epoch's value for the newest complete checkpoint (--resume)


def check_flags(args, parser):
    if not 0 <= args.label_smoothing < 1:
        parser.error("argument --label-smoothing: expected a fraction from 0 to below 1, got %g"
                     % args.label_smoothing)
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
    if args.freeze_features and not args.finetune:
        parser.error("--freeze-features goes with --finetune")
    if args.load_epoch is not None:
        flag = "--load-epoch" if args.load_epoch != LATEST else "--resume (--load-epoch latest)"
        if args.model_prefix is None:
            parser.error("%s needs --model-prefix, the prefix the checkpoints were saved with" % flag)
        if args.finetune:
            parser.error("%s continues a run; --finetune starts a new one: use one of them" % flag)
        if args.load_epoch != LATEST and args.load_epoch >= args.epochs:  # LATEST: train_flags.find_resume
            parser.error("--load-epoch %d leaves nothing to train with --epochs %g: raise --epochs"
                         % (args.load_epoch, args.epochs))
    if args.gpus and args.num_gpus:
        parser.error("--gpus chooses GPU ids, --num-gpus the first N GPUs: use one of them")
    if args.kv_store == "nccl" and not (args.num_gpus or args.gpus):
        parser.error("--kv-store nccl sums gradients over GPUs: it needs --num-gpus 1 or more")
    if args.seeds and distributed.several_processes(args.kv_store):
        parser.error("--seeds runs its seeds in turn on this machine; for a job of several "
                     "workers (launch.py, horovodrun) launch one job per --seed")
    if args.kv_store == "horovod" and (args.gpus or args.num_gpus > 1):
        parser.error("--kv-store horovod trains one GPU per process, the GPU of its local rank: "
                     "start one process per GPU (horovodrun -np N ...) with --num-gpus 1")
    try:
        precision.choose(args.amp, args.amp_dtype, device_type(args.num_gpus, args.gpus))
    except ValueError as e:
        parser.error(str(e))
    if args.kv_store == "dist_async" and args.model_prefix:
        parser.error("--kv-store dist_async keeps the optimizer's state on the servers, where it "
                     "cannot be saved: checkpoints (--model-prefix) need dist_sync")


def given_flags(parser, argv):
    """The destinations of the flags the command line gave (not left at their defaults)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


def check_effect(args, given, parser):
    """A flag given where it would change nothing is a usage error naming what gives it effect."""
    def refuse(flag, why):
        parser.error("%s would have no effect: %s" % (flag, why))

    if args.image_folder or args.rec_prefix:
        for dest in sorted({"data_dir", "data_url"} & given):
            refuse("--" + dest.replace("_", "-"), "it is where CIFAR comes from, and --image-folder "
                   "or --rec-prefix names your own data instead")
    if "lr_factor" in given and args.lr_mode != "step":
        refuse("--lr-factor", "it is the factor of --lr-mode step (with --lr-decay-epoch or "
               "--lr-decay-period)")
    if "save_period" in given and not args.model_prefix:
        refuse("--save-period", "checkpoints are saved only with --model-prefix")
    if "augment" in given and models.input_size(args.model) < 32:
        refuse("--augment", "%s always trains on random %d-pixel crops with mirror"
               % (args.model, models.input_size(args.model)))
    if "kv_store" in given and not distributed.several_processes(args.kv_store) and \
            len(gpu_ids(args.num_gpus, args.gpus)) <= 1:
        refuse("--kv-store %s" % args.kv_store, "it sums gradients over several devices and this "
               "run has one: add --num-gpus 2 or --gpus 0,1, or train with several workers "
               "(dist_sync under launch.py, horovod under horovodrun)")
    if args.amp_dtype and not args.amp:
        refuse("--amp-dtype", "it chooses the precision of --amp")
    if args.seeds and "seed" in given:
        parser.error("--seeds runs one run per seed; --seed sets the seed of one run: use one of them")
    comet_flags = sorted(given & {"comet_project", "comet_workspace", "no_comet_model"})
    if comet_flags and comet.comet_disabled(args.no_comet):
        refuse("--" + comet_flags[0].replace("_", "-"), "Comet is off (--no-comet or COMET_DISABLE)")
    if args.no_comet_model and not args.export:
        refuse("--no-comet-model", "only an export (--export PATH) is logged to Comet as a model")
    if args.export_batch_statistics and not (args.export and models.uses_batch_statistics(args.model)):
        refuse("--export-batch-statistics", "it chooses how --export PATH writes the spec'd network "
               "(the other networks normalise with their running statistics)")


