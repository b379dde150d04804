"""TrainState: what a run carries from epoch to epoch, and how a run's state is built or resumed.

The network is seeded, initialised (or started from a trained model's features) and
hybridized; its Trainer comes from trainer.py, its loss from losses.py.
"""
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np
from mxnet import gluon

import models

from . import checkpoint, distributed, precision, recipes, saved_model, trainer
from .losses import loss_function


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
    batches = trainer.run_batches(config, dataset.train_x.shape[0], ctx, worker)
    recipe = recipes.get(config.recipe)
    hooks = recipe.hooks(net, batches)  # before the Trainer: they may set learning-rate multipliers
    run_trainer = trainer.build(config, net, dataset.train_x.shape[0], ctx, worker)
    precision.attach(run_trainer, config.precision)
    distributed.start_trainer(run_trainer, net, dataset.train_x[:len(ctx)].as_in_context(ctx[0]), worker)
    rng = np.random.RandomState(config.seed)
    return TrainState(net=net, trainer=run_trainer, ctx=ctx, rng=rng, step_batches=worker.step_batches,
                      drop_last=trainer.whole_batches_only(config, worker),
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
