"""The recipes a run trains with (--recipe), each what it builds differently behind one
interface, so that state.py builds every run the same way and a new recipe is one class and one
entry of RECIPES:

    drop_last                                  trains on whole batches only
    schedule_name(config)                      the LR schedule as config.json and Comet name it
    schedule(config, updates_per_epoch, total_updates, base_lr)   the LRScheduler
    trainer_lr_wd(config, global_batch)        the Trainer's learning rate and weight decay
    augmentation(config, dataset, rng)         augment(batch, indices, epoch, rng), or None
    run_hooks(net, total_updates)              the run's per-epoch and per-update work, or None
"""
import models
from data import AlternatingFlipTranslate, PadCropFlip

from . import fast94
from .schedules import PiecewiseLinear, make_schedule


class Spec:
    """The spec's procedure (and GluonCV's recipes through its flags): SGD with the flags' rate,
    weight decay and schedule in epochs, --augment's pad-and-crop with flip."""
    drop_last = False

    def schedule_name(self, config):
        return (("linear-to-zero" if config.lr_mode == "linear" else config.lr_mode)
                + (" after %d warmup epochs" % config.warmup_epochs if config.warmup_epochs else ""))

    def schedule(self, config, updates_per_epoch, total_updates, base_lr):
        return make_schedule(config.lr_mode, base_lr, config.epochs, updates_per_epoch,
                             config.lr_factor, config.lr_decay_epoch, config.warmup_epochs,
                             config.lr_decay_period)

    def trainer_lr_wd(self, config, global_batch):
        return config.lr, config.wd

    def augmentation(self, config, dataset, rng):
        """--augment's pad-and-crop with flip, or for the 28x28 Inception networks their recipe's
        random crop with mirror (always)."""
        size = models.input_size(config.model)
        if size < 32:
            return PadCropFlip(dataset.mean, dataset.std, pad=0, size=size)
        if config.augment:
            return PadCropFlip(dataset.mean, dataset.std)
        return None

    def run_hooks(self, net, total_updates):
        return None


class Fast94:
    """airbench94's recipe (fast94.py): whole batches of the run's fractional epochs, its
    piecewise-linear schedule, its rate and decay in MXNet's terms, alternating flip with
    translation, and its per-update work (lookahead, the whitening bias's epochs)."""
    drop_last = True  # as airbench94 counts its 9.9 epochs

    def schedule_name(self, config):
        return "airbench94 piecewise linear"

    def schedule(self, config, updates_per_epoch, total_updates, base_lr):
        return PiecewiseLinear(total_updates, fast94.RECIPE.schedule, base_lr=base_lr)

    def trainer_lr_wd(self, config, global_batch):
        return fast94.trainer_settings(config.lr, config.momentum, config.wd, global_batch)

    def augmentation(self, config, dataset, rng):
        return AlternatingFlipTranslate(dataset.train_x.shape[0], rng, fast94.RECIPE.translate)

    def run_hooks(self, net, total_updates):
        return fast94.Fast94Run(net, total_updates)


RECIPES = {"spec": Spec(), "fast94": Fast94()}  # --recipe's choices
