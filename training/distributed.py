"""Where this process stands in a training job (its Worker): kvstore, rank, number of workers,
shard.

On one machine (kvstore local, device or nccl) there is one worker. With a dist_* kvstore the
job is several worker processes started by launch.py, on MXNet's parameter server; with
`horovod`, several processes started by horovodrun, whose gradients Horovod's ring allreduce
sums (hvd.DistributedTrainer; Gloo on CPUs, NCCL on GPUs), one device each. Either way each
worker trains on its own shard of the training data, and rank 0 alone writes the run folder,
checkpoints and Comet.

Batch size per worker: every worker takes --batch-size images per update. With dist_sync and
dist_device_sync the servers sum the gradients of all workers into one update of the global
batch (batch size x workers), so every worker makes the same number of updates per epoch and
keeps an identical copy of the parameters; Horovod's ranks do the same with the allreduced
gradient. With dist_async every worker's push is an update of its own batch: the servers apply
num_workers times as many updates.
"""
from dataclasses import dataclass, replace

import mxnet as mx
import numpy as np

from data import DataError

KVSTORES = ("local", "device", "nccl", "dist_sync", "dist_async", "dist_device_sync", "horovod")
SHARD_SEED = 1  # the fixed split of the training set into shards, the same in every worker
HOROVOD_SETUP = ("build it into the project's environment with CIFAR_HOROVOD=1 ./train.sh ... "
                 "(a C++ compiler and CMake needed; docs/several-machines.md)")


class LaunchError(Exception):
    """A kvstore asked for outside the job it needs (dist_*: launch.py; horovod: Horovod)."""


def several_processes(kv_store):
    """Whether the kvstore trains with several worker processes (a job of launch.py or horovodrun)."""
    return kv_store.startswith("dist") or kv_store == "horovod"


@dataclass
class Worker:
    """This process in its job: how it sums gradients, its rank and how many workers there are."""
    kind: str  # one of KVSTORES
    kvstore: object  # what gluon.Trainer gets: the name, the dist kvstore created once, or None
    rank: int = 0
    num_workers: int = 1
    local_rank: int = 0  # among the workers of this machine (Horovod: the GPU it trains on)
    horovod: object = None  # the module horovod.mxnet, in a Horovod job

    @property
    def distributed(self):
        return several_processes(self.kind)

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
        None (MXNet's choice) otherwise; dist_async must update on the servers; Horovod has no
        kvstore."""
        return False if self.kind in ("dist_sync", "dist_device_sync") else None

    @property
    def workers_per_update(self):
        """How many workers' batches one update averages over: all of them when synchronous."""
        return 1 if self.asynchronous else self.num_workers

    @property
    def step_batches(self):
        """How many workers' batches trainer.step divides the summed gradient by, beyond what
        the Trainer does itself: hvd.DistributedTrainer divides by the number of ranks on its
        own; a dist_sync kvstore only sums."""
        return 1 if self.horovod is not None else self.workers_per_update

    @property
    def updates_per_step(self):
        """Server updates per step of one worker (the LR schedule counts server updates)."""
        return self.num_workers if self.asynchronous else 1


def connect(kv_store, environ):
    """The Worker of this process. A dist_* kvstore is created here; it needs launch.py's env.
    horovod joins the job horovodrun started (alone, a job of one)."""
    if kv_store == "horovod":
        try:
            import horovod.mxnet as hvd
        except ImportError as e:
            raise LaunchError("--kv-store horovod needs Horovod, which this environment does not "
                              "have (%s): %s" % (e, HOROVOD_SETUP)) from None
        hvd.init()
        return Worker(kv_store, None, rank=hvd.rank(), num_workers=hvd.size(),
                      local_rank=hvd.local_rank(), horovod=hvd)
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
    train on with the gradient as its weights.
    Doing it here, after a forward pass has given every parameter its shape, and waiting for it,
    orders the two. Uses the Trainer's own (private) initialisation, as step() would. Only for
    updates in the worker (dist_sync): with updates on the servers (dist_async) every step pulls
    the weights anyway, and the servers' optimizer must first see the step's batch size.
    """
    if worker.horovod is not None:
        # Every rank starts from rank 0's weights (each initialised its own).
        net(sample)  # completes deferred initialisation: every parameter has its data
        worker.horovod.broadcast_parameters(net.collect_params(), root_rank=0)
        mx.nd.waitall()
        return
    if worker.update_on_kvstore is not False:
        return
    if any(p._deferred_init for p in net.collect_params().values()):
        # Completes deferred initialisation: every parameter has its data. Only then: a forward
        # pass leaves a convolution's bias in oneDNN's layout, which the kvstore cannot send (its
        # init push fails unseen, and the servers stop at the first pull: "init N first").
        net(sample)
    trainer._init_kvstore()
    trainer._init_params()
    mx.nd.waitall()
