"""--recipe fast94: airbench94's network and training (legacy/airbench94.py, arXiv 2404.00498)
in MXNet's terms.

airbench94 states its hyperparameters for PyTorch's SGD on the *summed* loss of a batch, scaled
by a "kilostep" of 1024 * (1 + 1 / (1 - momentum)) images, with weight decay divided by each
group's learning rate (so that the decay does not grow with the 64x rate of BatchNorm's shift):

    lr_group = lr / kilostep (x bias_scaler for BatchNorm's shifts)
    wd_group = weight_decay * batch_size / kilostep / lr_group
    p -= lr_group * f(t) * (d + momentum * buf),  buf = momentum * buf + d,  d = grad_sum + wd_group * p

MXNet's Trainer divides the summed gradient by the batch size (trainer.step(batch_size)), so the
same updates come from lr = lr_group * batch_size and wd = wd_group / batch_size, with BatchNorm's
shifts at lr_mult = bias_scaler and wd_mult = 1 / bias_scaler; f(t) is the schedule
(schedules.PiecewiseLinear). MXNet's own 'nag' keeps the learning rate inside its momentum
buffer (buf = momentum * buf - lr * d), which differs from PyTorch's as soon as the rate changes
from one update to the next, as it does at every update here: the recipe uses `NesterovSGD`,
PyTorch's form.
"""
from dataclasses import dataclass

import mxnet as mx

from data import AlternatingFlipTranslate

from ..lookahead import Lookahead
from ..schedules import PiecewiseLinear
from .base import Hooks, Recipe


@dataclass(frozen=True)
class Hyperparameters:
    """airbench94's hyperparameters, in its own terms."""
    epochs: float = 9.9  # passes over the training set; the last one cut short
    batch_size: int = 1024  # images per update
    lr: float = 11.5  # per kilostep of images (see above)
    momentum: float = 0.85  # Nesterov
    weight_decay: float = 0.0153  # per kilostep, decoupled from the learning rate
    bias_scaler: float = 64.0  # BatchNorm's shifts learn this much faster
    label_smoothing: float = 0.2
    whiten_bias_epochs: int = 3  # the whitening layer's bias trains in these first epochs only
    translate: int = 2  # pixels, at most, of the training images' random translation
    tta_level: int = 2  # test-time augmentation: mirror, then one-pixel translations
    schedule: tuple = ((0.0, 0.2), (0.23, 1.0), (1.0, 0.07))  # (fraction of updates, lr factor)

    @property
    def kilostep(self):
        """Images per 'kilostep': 1024 * (1 + 1 / (1 - momentum))."""
        return 1024 * (1 + 1 / (1 - self.momentum))

    def mxnet_settings(self, batch_size=None):
        """(lr, wd) for MXNet's Trainer (NesterovSGD below) on the batch mean of the loss; BatchNorm's shifts take
        lr_mult = bias_scaler and wd_mult = 1 / bias_scaler on top (bias_multipliers)."""
        batch_size = batch_size or self.batch_size
        lr_group = self.lr / self.kilostep
        wd_group = self.weight_decay * batch_size / self.kilostep / lr_group
        return lr_group * batch_size, wd_group / batch_size


HYPERPARAMETERS = Hyperparameters()
OPTIMIZER = "nesterovsgd"  # NesterovSGD below
SCHEDULE = "it follows airbench94's schedule (0.2 to 1 over 23% of the updates, then to 0.07)"


class Fast94(Recipe):
    """Whole batches of the run's fractional epochs, airbench94's piecewise-linear schedule, its
    rate and decay in MXNet's terms, alternating flip with translation, and its per-update work
    (Fast94Hooks)."""
    name = "fast94"
    summary = ("airbench94's network and recipe (whitening, Nesterov momentum, lookahead, label "
               "smoothing, alternating flip, test-time augmentation); --lr and --wd are then "
               "airbench94's: per 1024 x (1 + 1/(1 - momentum)) images (docs/fast94.md)")
    network = "airbench94"
    # --lr and --wd in airbench94's terms (above); --epochs may end within an epoch.
    flag_defaults = {"epochs": HYPERPARAMETERS.epochs, "batch_size": HYPERPARAMETERS.batch_size,
                     "lr": HYPERPARAMETERS.lr, "momentum": HYPERPARAMETERS.momentum,
                     "wd": HYPERPARAMETERS.weight_decay, "label_smoothing": HYPERPARAMETERS.label_smoothing,
                     "tta_level": HYPERPARAMETERS.tta_level, "optimizer": OPTIMIZER}
    fixed_flags = {"augment": "it trains with airbench94's alternating flip and 2-pixel translation",
                   "lr_mode": SCHEDULE, "lr_factor": SCHEDULE, "lr_decay_epoch": SCHEDULE,
                   "lr_decay_period": SCHEDULE, "warmup_epochs": "airbench94's schedule has its own warmup",
                   "optimizer": "it trains with Nesterov momentum as airbench94 does (PyTorch's form)"}
    drop_last = True  # as airbench94 counts its 9.9 epochs

    def usage_error(self, args):
        if args.kv_store == "dist_async":
            return ("--recipe fast94 changes learning rates during the run, which dist_async's "
                    "servers cannot follow: use --kv-store dist_sync")
        return None

    def schedule_name(self, config):
        return "airbench94 piecewise linear"

    def schedule(self, config, updates_per_epoch, total_updates, base_lr):
        return PiecewiseLinear(total_updates, HYPERPARAMETERS.schedule, base_lr=base_lr)

    def trainer_lr_wd(self, config, global_batch):
        return trainer_settings(config.lr, config.momentum, config.wd, global_batch)

    def augmentation(self, config, dataset, rng):
        return AlternatingFlipTranslate(dataset.train_x.shape[0], rng, HYPERPARAMETERS.translate)

    def hooks(self, net, total_updates):
        return Fast94Hooks(net, total_updates)


def trainer_settings(lr, momentum, wd, batch_size):
    """(learning rate, weight decay) of MXNet's Trainer for airbench94's lr and weight decay at
    `batch_size` images per update (all workers' together)."""
    return Hyperparameters(lr=lr, momentum=momentum, weight_decay=wd).mxnet_settings(batch_size)


class Fast94Hooks(Hooks):
    """On airbench94's network: the whitening layer's bias trains in the first
    `whiten_bias_epochs` only (no gradient after), its padding channels stay 0, and lookahead
    averages the network after every update. A checkpoint keeps the lookahead average."""

    def __init__(self, net, total_updates, whiten_bias_epochs=HYPERPARAMETERS.whiten_bias_epochs):
        self.net, self.whiten_bias_epochs = net, whiten_bias_epochs
        bias_multipliers(net, HYPERPARAMETERS.bias_scaler)
        self.lookahead = Lookahead(net.collect_params(), total_updates)

    def start_epoch(self, epoch):
        # No gradient at all, as airbench94's requires_grad=False: the backward pass then skips
        # the whitening layer, its GELU and the first convolution's input gradient.
        self.net.whitening.bias.grad_req = "write" if epoch < self.whiten_bias_epochs else "null"

    def after_update(self, update):
        self.net.zero_padding()
        self.lookahead.after_update(update)

    def state(self):
        return self.lookahead.state()

    def load_state(self, arrays):
        self.lookahead.load_state(arrays)


@mx.optimizer.register
class NesterovSGD(mx.optimizer.Optimizer):
    """SGD with Nesterov momentum as PyTorch computes it, the learning rate outside the buffer:

        d = rescale_grad * grad + wd * w;  buf = momentum * buf + d;  w -= lr * (d + momentum * buf)

    MXNet's fused nag_mom_update keeps the rate inside its state (mom = momentum * mom - lr * d;
    w += momentum * mom - lr * d), which differs from the above once lr changes between updates,
    as it does at every update of airbench94's schedule. Kept as mom = -lr * buf and scaled by
    lr / (the previous update's lr) before each update, MXNet's state gives PyTorch's update
    exactly, in one fused kernel per parameter instead of a dozen array operations. (A rate that
    comes back from 0 starts its momentum afresh.)"""

    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.last_lr = {}  # index -> the rate of its previous update

    def create_state(self, index, weight):
        return mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        last = self.last_lr.get(index, lr)
        if lr != last:
            state *= lr / last if last else 0.0
        self.last_lr[index] = lr
        clip = {} if self.clip_gradient is None else {"clip_gradient": self.clip_gradient}
        mx.nd.nag_mom_update(weight, grad, state, out=weight, lr=lr, wd=wd, momentum=self.momentum,
                             rescale_grad=self.rescale_grad, **clip)


def bias_multipliers(net, bias_scaler):
    """BatchNorm's learnable shifts (beta) at bias_scaler times the learning rate and
    1 / bias_scaler times the weight decay, as airbench94 trains them."""
    for name, param in net.collect_params().items():
        if name.endswith("beta") and param.grad_req != "null":
            param.lr_mult, param.wd_mult = bias_scaler, 1 / bias_scaler


RECIPE = Fast94()
