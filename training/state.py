"""TrainState: what a run carries from epoch to epoch, and how a run's state is built or resumed.

The network is seeded, initialised (or started from a trained model's features) and
hybridized; the Trainer gets the run's optimizer and its LR schedule through optimizer_params,
and nothing else ever sets the learning rate.
"""
import math
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np
from mxnet import gluon

import models
from data import num_batches

from . import checkpoint, distributed, precision, saved_model
from .losses import SmoothedCrossEntropy
from . import recipes


@dataclass
class TrainState:
    """What a training run carries from epoch to epoch."""
    net: gluon.HybridBlock
    trainer: gluon.Trainer
    ctx: list
    rng: np.random.RandomState  # shuffles the training set (and draws the augmentation)
    epoch: int = 0  # epochs completed
    step_batches: int = 1  # workers' batches trainer.step divides by (Worker.step_batches; dist_sync: all)
    drop_last: bool = False  # equal batches only (dist_async: the servers' scale is fixed)
    augment: object = None  # augment(batch, indices, epoch, rng) -> batch (data.PadCropFlip, ...)
    loss_fn: gluon.loss.Loss = field(default_factory=gluon.loss.SoftmaxCrossEntropyLoss)
    run_batches: int = None  # batches of the whole run (the last epoch may end early); None: whole epochs
    hooks: object = None  # the recipe's work beside the update (recipes.base.Hooks), or None
    tta_level: int = 0  # test-time augmentation of the last evaluation (training/tta.py)


def make_trainer(net, lr, momentum, schedule, kvstore="device", update_on_kvstore=None,
                 optimizer="sgd", wd=0.0, horovod=None):
    """The Trainer, with the LR schedule (an mx.lr_scheduler.LRScheduler; lr is its base rate).
    Defaults: the spec's plain SGD with momentum, no weight decay.

    optimizer: 'sgd' or 'nag' (Nesterov momentum). kvstore: with several contexts the Trainer
    must aggregate gradients through a kvstore ('device' or 'local'); with kvstore=None each copy
    would update from its own gradient and the copies would silently drift apart. A dist kvstore
    is passed as the created object. update_on_kvstore=False keeps the optimizer in the worker
    (synchronous dist kvstores: the update, its state and schedule stay local and identical in
    every worker, and checkpoints can save them); None lets MXNet choose. horovod: the module
    horovod.mxnet in a Horovod job, whose DistributedTrainer allreduces the gradients instead of a
    kvstore (and averages them over the ranks).
    """
    settings = {"learning_rate": lr, "momentum": momentum, "wd": wd, "lr_scheduler": schedule}
    if horovod is not None:
        return horovod.DistributedTrainer(net.collect_params(), optimizer, settings)
    return gluon.Trainer(net.collect_params(), optimizer, settings, kvstore=kvstore,
                         update_on_kvstore=update_on_kvstore)


def batches_per_epoch(config, train_images, ctx, worker):
    """Batches of an epoch of this worker (some recipes, like dist_async, train on whole batches only)."""
    return num_batches(train_images, config.batch_size, min_size=len(ctx),
                       drop_last=worker.asynchronous or recipes.get(config.recipe).drop_last)


def run_batches(config, train_images, ctx, worker):
    """Batches of the whole run: --epochs' fraction of the last epoch rounded up, as airbench94
    counts its 9.9 epochs."""
    return math.ceil(batches_per_epoch(config, train_images, ctx, worker) * config.epochs)


def build_schedule(config, train_images, ctx, worker):
    """The run's LR schedule, counted in updates as the optimizer counts them (on the servers for
    dist_async)."""
    steps = batches_per_epoch(config, train_images, ctx, worker)
    return recipes.get(config.recipe).schedule(config, steps * worker.updates_per_step,
                                           run_batches(config, train_images, ctx, worker),
                                           trainer_lr_wd(config, worker)[0])


def trainer_lr_wd(config, worker):
    """(learning rate, weight decay) of the Trainer, as the run's recipe sets them for its
    global batch."""
    return recipes.get(config.recipe).trainer_lr_wd(config, config.batch_size * worker.workers_per_update)


def loss_function(config, num_classes):
    if config.label_smoothing:
        return SmoothedCrossEntropy(num_classes, config.label_smoothing)
    return gluon.loss.SoftmaxCrossEntropyLoss()


def build_state(config, dataset, ctx, worker):
    """Seeded, initialised, hybridized network and its Trainer, ready for epoch 0 (under --amp,
    the network is built after AMP is on, which its operators need)."""
    mx.random.seed(config.seed, ctx="all")
    precision.enable(config.precision, models.image_convolution_filters(config.model))
    net = models.build(config.model, dataset.num_classes, ctx,
                       bf16_on_amx=precision.kernels(config.precision, ctx[0].device_type) == "AMX")
    models.initialize(net, config.model, ctx, dataset.train_x)
    if config.finetune:
        saved_model.load_features(config.finetune, net)
        if config.freeze_features:
            net.features.collect_params().setattr("grad_req", "null")
    net.hybridize(static_alloc=True, static_shape=True)
    batches = run_batches(config, dataset.train_x.shape[0], ctx, worker)
    recipe = recipes.get(config.recipe)
    hooks = recipe.hooks(net, batches)  # before the Trainer: they may set learning-rate multipliers
    lr, wd = trainer_lr_wd(config, worker)
    trainer = make_trainer(net, lr, config.momentum,
                           build_schedule(config, dataset.train_x.shape[0], ctx, worker),
                           kvstore=worker.kvstore, update_on_kvstore=worker.update_on_kvstore,
                           optimizer=config.optimizer, wd=wd, horovod=worker.horovod)
    precision.attach(trainer, config.precision)
    distributed.start_trainer(trainer, net, dataset.train_x[:len(ctx)].as_in_context(ctx[0]), worker)
    rng = np.random.RandomState(config.seed)
    return TrainState(net=net, trainer=trainer, ctx=ctx, rng=rng, step_batches=worker.step_batches,
                      drop_last=worker.asynchronous or recipe.drop_last,
                      augment=recipe.augmentation(config, dataset, rng),
                      loss_fn=loss_function(config, dataset.num_classes), run_batches=batches,
                      hooks=hooks, tta_level=config.tta_level)


def resume(state, prefix, record):
    """Continues state from the checkpoint PREFIX-NNNN whose record checkpoint.read returned.

    The saved optimizer brings its own schedule; this run's (the same curve unless --lr, --epochs
    or another schedule flag changed: two-stage training) is put back, and continues from the
    saved update count either way.
    """
    run_schedule = state.trainer.optimizer.lr_scheduler
    checkpoint.restore(prefix, record, state)
    state.trainer.optimizer.lr_scheduler = run_schedule
