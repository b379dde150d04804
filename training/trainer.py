"""A run's Trainer and its learning-rate schedule, from its RunConfig and its place in a job: the
optimizer, the rate and weight decay its recipe gives, the schedule counted in updates, and the
batches of an epoch and of the whole run. The Trainer gets the schedule through
optimizer_params, and nothing else ever sets the learning rate.
"""
import math

from mxnet import gluon

from data import num_batches

from . import recipes


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


def whole_batches_only(config, worker):
    """Whether the run trains on whole batches only (its recipe's choice; dist_async: the servers'
    scale is fixed)."""
    return worker.asynchronous or recipes.get(config.recipe).drop_last


def batches_per_epoch(config, train_images, ctx, worker):
    """Batches of an epoch of this worker."""
    return num_batches(train_images, config.batch_size, min_size=len(ctx),
                       drop_last=whole_batches_only(config, worker))


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


def build(config, net, train_images, ctx, worker):
    """The run's Trainer: its recipe's rate and decay and schedule, the worker's kvstore (or
    Horovod's DistributedTrainer)."""
    lr, wd = trainer_lr_wd(config, worker)
    return make_trainer(net, lr, config.momentum, build_schedule(config, train_images, ctx, worker),
                        kvstore=worker.kvstore, update_on_kvstore=worker.update_on_kvstore,
                        optimizer=config.optimizer, wd=wd, horovod=worker.horovod)
