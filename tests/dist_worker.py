"""A worker for the distributed tests, started by launch.py or horovodrun: trains a few steps,
saves its copy.

    PYTHONPATH=. python launch.py -n 2 -s 1 -- python tests/dist_worker.py OUT_DIR [--kv-store K] [--die-at-step S]
    horovodrun -np 2 -H 127.0.0.1:2 python tests/dist_worker.py OUT_DIR --kv-store horovod [--die-at-step S]
    python tests/dist_worker.py OUT_DIR --joint 2     # the reference: one process, the joint batch

Uses the product's own pieces (distributed.connect and shard, make_trainer, train_one_epoch) on
a small learnable dataset and writes OUT_DIR/rank-R.params and rank-R.json (its metrics). With
--die-at-step K, worker 1 exits with code 3 before its K-th step, as a crashed worker would (with
--killed, it is killed by SIGKILL instead).
--joint N trains what N synchronous workers train, in one process: each step the N workers'
batches side by side on N CPU contexts (so each BatchNorm sees one worker's batch), one update.
"""
# A scheduler or server process stays inside runtime.start's import of MXNet, and unpickles the
# optimizer's schedule from training.schedules while in it. The tests put the repository on
# PYTHONPATH.
import argparse
import json
import os
import signal
import sys

from common import runtime

IMAGES, BATCH = 64, 8  # 32 images and 4 steps per worker and epoch


def learnable_dataset():
    import mxnet as mx
    import numpy as np

    from data import Dataset

    rng = np.random.RandomState(0)
    y = np.arange(IMAGES) % 2
    x = rng.normal(size=(IMAGES, 3, 32, 32)) + (y * 2.0 - 1.0).reshape(-1, 1, 1, 1)
    return Dataset(train_x=mx.nd.array(x), train_y=mx.nd.array(y), test_x=mx.nd.array(x[:8]),
                   test_y=mx.nd.array(y[:8]), class_names=["a", "b"], mean=np.zeros(3),
                   std=np.ones(3))


def train(out_dir, kv_store="dist_sync", die_at_step=None, killed=False):
    import mxnet as mx
    import numpy as np

    from models import SpecResNet
    from training import distributed
    from training.loop import train_one_epoch
    from training.schedules import LinearDecay
    from training.state import TrainState
    from training.trainer import make_trainer

    worker = distributed.connect(kv_store, os.environ)
    dataset = distributed.shard(learnable_dataset(), worker)
    mx.random.seed(worker.rank)  # different initial weights: the kvstore must make them equal
    net = SpecResNet(2)
    net.initialize(ctx=[mx.cpu()])
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, 0.05, 0.9, LinearDecay(8 * worker.updates_per_step, base_lr=0.05),
                           kvstore=worker.kvstore, update_on_kvstore=worker.update_on_kvstore,
                           horovod=worker.horovod)
    state = TrainState(net=net, trainer=trainer, ctx=[mx.cpu()], rng=np.random.RandomState(0),
                       step_batches=worker.step_batches, drop_last=worker.asynchronous)
    distributed.start_trainer(trainer, net, dataset.train_x[:2], worker)
    if die_at_step is not None and worker.rank == 1:
        original = trainer.step

        def step(*args, **kwargs):
            if trainer.optimizer.num_update + 1 >= die_at_step:
                if killed:
                    os.kill(os.getpid(), signal.SIGKILL)
                os._exit(3)  # a crash: no clean shutdown of the kvstore
            return original(*args, **kwargs)

        trainer.step = step
    history = [train_one_epoch(state, dataset.train_x, dataset.train_y, BATCH) for _ in range(2)]
    net.save_parameters(os.path.join(out_dir, "rank-%d.params" % worker.rank))
    with open(os.path.join(out_dir, "rank-%d.json" % worker.rank), "w") as f:
        json.dump({"rank": worker.rank, "num_workers": worker.num_workers,
                   "shard": dataset.train_y.shape[0], "history": history,
                   "num_update": trainer.optimizer.num_update}, f)


def train_joint(out_dir, workers):
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, gluon

    from data import batches
    from models import SpecResNet
    from training import distributed
    from training.schedules import LinearDecay
    from training.trainer import make_trainer

    shards = [distributed.shard(learnable_dataset(), distributed.Worker("joint", None, rank=r, num_workers=workers))
              for r in range(workers)]
    ctx = [mx.cpu(i) for i in range(workers)]
    mx.random.seed(0)  # rank 0's initial weights, which a job's workers all start from
    net = SpecResNet(2)
    net.initialize(ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, 0.05, 0.9, LinearDecay(8, base_lr=0.05), kvstore="device")
    rngs = [np.random.RandomState(0) for _ in range(workers)]  # each worker's shuffling
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(2):
        for parts in zip(*(batches(s.train_x, s.train_y, BATCH, rng) for s, rng in zip(shards, rngs))):
            with autograd.record():
                losses = [loss_fn(net(x.as_in_context(c)), y.as_in_context(c)) for (x, y), c in zip(parts, ctx)]
            autograd.backward(losses)
            trainer.step(sum(x.shape[0] for x, _ in parts))
    net.save_parameters(os.path.join(out_dir, "joint.params"))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--kv-store", default="dist_sync")
    parser.add_argument("--die-at-step", type=int, default=None)
    parser.add_argument("--killed", action="store_true", help="with --die-at-step: by SIGKILL")
    parser.add_argument("--joint", type=int, default=None, metavar="N")
    args = parser.parse_args(argv)
    if args.joint:
        train_joint(args.out_dir, args.joint)
    else:
        train(args.out_dir, args.kv_store, args.die_at_step, args.killed)
    return 0


if __name__ == "__main__":
    sys.exit(runtime.start(main))
