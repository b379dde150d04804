"""A worker for the distributed tests, started by launch.py: trains a few steps, saves its copy.

    PYTHONPATH=. python launch.py -n 2 -s 1 -- python tests/dist_worker.py OUT_DIR [--kv-store K] [--die-at-step S]

Uses the product's own pieces (distributed.connect and shard, make_trainer, train_one_epoch) on
a small learnable dataset and writes OUT_DIR/rank-R.params and rank-R.json (its metrics). With
--die-at-step K, worker 1 exits with code 3 before its K-th step, as a crashed worker would.
"""
# A scheduler or server process stays inside runtime.start's import of MXNet, and unpickles the
# optimizer's schedule from training.schedules while in it. The tests put the repository on
# PYTHONPATH.
import argparse
import json
import os
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


def train(out_dir, kv_store="dist_sync", die_at_step=None):
    import mxnet as mx
    import numpy as np

    from models import SpecResNet
    from training import distributed
    from training.loop import train_one_epoch
    from training.schedules import LinearDecay
    from training.state import TrainState, make_trainer

    worker = distributed.connect(kv_store, os.environ)
    dataset = distributed.shard(learnable_dataset(), worker)
    mx.random.seed(worker.rank)  # different initial weights: the kvstore must make them equal
    net = SpecResNet(2)
    net.initialize(ctx=[mx.cpu()])
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, 0.05, 0.9, LinearDecay(8 * worker.updates_per_step, base_lr=0.05),
                           kvstore=worker.kvstore, update_on_kvstore=worker.update_on_kvstore)
    state = TrainState(net=net, trainer=trainer, ctx=[mx.cpu()], rng=np.random.RandomState(0),
                       workers_per_update=worker.workers_per_update, drop_last=worker.asynchronous)
    distributed.start_trainer(trainer, net, dataset.train_x[:2], worker)
    if die_at_step is not None and worker.rank == 1:
        original = trainer.step

        def step(*args, **kwargs):
            if trainer.optimizer.num_update + 1 >= die_at_step:
                os._exit(3)  # a crash: no clean shutdown of the kvstore
            return original(*args, **kwargs)

        trainer.step = step
    history = [train_one_epoch(state, dataset.train_x, dataset.train_y, BATCH) for _ in range(2)]
    net.save_parameters(os.path.join(out_dir, "rank-%d.params" % worker.rank))
    with open(os.path.join(out_dir, "rank-%d.json" % worker.rank), "w") as f:
        json.dump({"rank": worker.rank, "num_workers": worker.num_workers,
                   "shard": dataset.train_y.shape[0], "history": history,
                   "num_update": trainer.optimizer.num_update}, f)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--kv-store", default="dist_sync")
    parser.add_argument("--die-at-step", type=int, default=None)
    args = parser.parse_args(argv)
    train(args.out_dir, args.kv_store, args.die_at_step)
    return 0


if __name__ == "__main__":
    sys.exit(runtime.start(main))
