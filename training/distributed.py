"""Where this process stands in a training job (its Worker): kvstore, rank, number of workers,
shard.

On one machine (kvstore local, device or nccl) there is one worker. With a dist_* kvstore the
job is several worker processes started by launch.py, each with its own shard of the training
data; rank 0 alone writes the run folder, checkpoints and Comet.

Batch size per worker: every worker takes --batch-size images per update. With dist_sync and
dist_device_sync the servers sum the gradients of all workers into one update of the global
batch (batch size x workers), so every worker makes the same number of updates per epoch and
keeps an identical copy of the parameters. With dist_async every worker's push is an update of
its own batch: the servers apply num_workers times as many updates.
"""
from dataclasses import dataclass, replace

import mxnet as mx
import numpy as np

from data import DataError

KVSTORES = ("local", "device", "nccl", "dist_sync", "dist_async", "dist_device_sync")
SHARD_SEED = 1  # the fixed split of the training set into shards, the same in every worker


class LaunchError(Exception):
    """A dist_* kvstore asked for outside a job started by launch.py."""


@dataclass
class Worker:
    """This process in its job: how it sums gradients, its rank and how many workers there are."""
    kind: str  # one of KVSTORES
    kvstore: object  # what gluon.Trainer gets: the name, or the dist kvstore created once
    rank: int = 0
    num_workers: int = 1

    @property
    def distributed(self):
        return self.kind.startswith("dist")

    @property
    def asynchronous(self):
        return self.kind == "dist_async"

    @property
    def chief(self):
        return self.rank == 0

    @property
    def update_on_kvstore(self):
        """False for synchronous dist kvstores: each worker applies the summed gradient itself, so
        its optimizer state and schedule stay local, identical everywhere, and can be saved.
        None (MXNet's choice) otherwise; dist_async must update on the servers."""
        return False if self.distributed and not self.asynchronous else None

    @property
    def workers_per_update(self):
        """How many workers' batches one update averages over: all of them when synchronous."""
        return 1 if self.asynchronous else self.num_workers

    @property
    def updates_per_step(self):
        """Server updates per step of one worker (the LR schedule counts server updates)."""
        return self.num_workers if self.asynchronous else 1


def connect(kv_store, environ):
    """The Worker of this process. A dist_* kvstore is created here; it needs launch.py's env."""
    if not kv_store.startswith("dist"):
        return Worker(kv_store, kv_store)
    if "DMLC_ROLE" not in environ:
        raise LaunchError(
            "--kv-store %s trains with several worker processes, which launch.py starts: "
            "python launch.py -n 2 -- python train_cifar10.py --kv-store %s ..."
            % (kv_store, kv_store))
    kv = mx.kv.create(kv_store)
    return Worker(kv_store, kv, rank=kv.rank, num_workers=kv.num_workers)


def shard_indices(n, rank, num_workers):
    """The training images of worker `rank`: a fixed random split into equal parts.

    Every shard has n // num_workers images (the remainder is left out), so that synchronous
    workers make the same number of updates per epoch.
    """
    order = np.random.RandomState(SHARD_SEED).permutation(n)
    size = n // num_workers
    return np.sort(order[rank * size:(rank + 1) * size])


def shard(dataset, worker):
    """The dataset with this worker's share of the training images (the test set is whole)."""
    if worker.num_workers == 1:
        return dataset
    if dataset.train_x.shape[0] < worker.num_workers:
        raise DataError("%d training images cannot be shared by %d workers"
                         % (dataset.train_x.shape[0], worker.num_workers))
    index = mx.nd.array(shard_indices(dataset.train_x.shape[0], worker.rank, worker.num_workers),
                        dtype=np.int32)
    return replace(dataset, train_x=mx.nd.take(dataset.train_x, index),
                   train_y=mx.nd.take(dataset.train_y, index))


def start_trainer(trainer, net, sample, worker):
    """Initialises a dist kvstore with the parameters before the first update, and waits.

    gluon.Trainer would do it inside the first step(), right before pushing that step's
    gradients under the same keys: the pull of the initial weights and the push of gradients
    are independent to MXNet's engine, so under load a worker's weight pull could be answered
    after the servers had replaced the value with the summed gradient, and that worker would
    train on with the gradient as its weights (seen here: one copy in four runs differed).
    Doing it here, after a forward pass has given every parameter its shape, and waiting for it,
    orders the two. Uses the Trainer's own (private) initialisation, as step() would. Only for
    updates in the worker (dist_sync): with updates on the servers (dist_async) every step pulls
    the weights anyway, and the servers' optimizer must first see the step's batch size.
    """
    if worker.update_on_kvstore is not False:
        return
    net(sample)  # completes deferred initialisation: every parameter has its data
    trainer._init_kvstore()
    trainer._init_params()
    mx.nd.waitall()
