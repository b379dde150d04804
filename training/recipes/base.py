"""The interface of every recipe (Recipe), whose defaults are the flags' own procedure, and of
the work a recipe may do beside the optimizer's update (Hooks). state.py builds every run
through it, train_checks.py checks the flags against it, and checkpoint.py keeps the hooks' state.
"""
import models
from data import PadCropFlip

from ..schedules import make_schedule


class Hooks:
    """A run's work beside the optimizer's update (Recipe.hooks builds it, before the Trainer,
    so that it may set the parameters' learning-rate multipliers). Every method may be left as
    it is here: nothing to do, nothing to keep."""

    def start_epoch(self, epoch):
        """Before the first update of epoch `epoch` (0 for the first)."""

    def after_update(self, update):
        """After each update; update: the optimizer's count, 1 for the first."""

    def state(self):
        """The NDArrays a checkpoint keeps of the hooks (PREFIX-NNNN.recipe), or None."""
        return None

    def load_state(self, arrays):
        """Continues from what state() returned, read back from a checkpoint."""


class Recipe:
    """How a run trains, as --recipe names it. Each attribute and method has the flags' own
    procedure as its default, so a recipe states only what it changes."""
    name = None  # --recipe's value
    summary = ""  # what --recipe's help says of it
    network = None  # the --model it trains: its default, and the only network it takes (None: any)
    flag_defaults = {}  # flag destination -> this recipe's default (a flag given still wins)
    fixed_flags = {}  # flag destination -> why giving that flag would change nothing
    drop_last = False  # trains on whole batches only

    def defaults(self):
        """The flags' defaults under this recipe, its network's included."""
        return dict({"model": self.network} if self.network else {}, **self.flag_defaults)

    def usage_error(self, args):
        """A usage error for flags this recipe cannot train with (beyond fixed_flags), or None."""
        return None

    def schedule_name(self, config):
        """The LR schedule as config.json and Comet name it."""
        return (("linear-to-zero" if config.lr_mode == "linear" else config.lr_mode)
                + (" after %d warmup epochs" % config.warmup_epochs if config.warmup_epochs else ""))

    def schedule(self, config, updates_per_epoch, total_updates, base_lr):
        """The LR schedule: an mx.lr_scheduler.LRScheduler of the update count."""
        return make_schedule(config.lr_mode, base_lr, config.epochs, updates_per_epoch,
                             config.lr_factor, config.lr_decay_epoch, config.warmup_epochs,
                             config.lr_decay_period)

    def trainer_lr_wd(self, config, global_batch):
        """(learning rate, weight decay) of the Trainer; global_batch: images per update, all
        workers' together."""
        return config.lr, config.wd

    def augmentation(self, config, dataset, rng):
        """augment(batch, indices, epoch, rng) -> batch, or None: --augment's pad-and-crop with
        flip, or for a network of smaller input its random crop with mirror (always)."""
        size = models.input_size(config.model)
        if size < 32:
            return PadCropFlip(dataset.mean, dataset.std, pad=0, size=size)
        if config.augment:
            return PadCropFlip(dataset.mean, dataset.std)
        return None

    def hooks(self, net, total_updates):
        """The run's Hooks, or None; total_updates: updates of the whole run."""
        return None
