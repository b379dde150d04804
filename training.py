"""The training procedure: schedule, optimizer, one epoch of training, evaluation.

Plain functions over a small TrainState. Every step runs on a list of contexts (one GPU, several
GPUs, or CPUs): the batch is split across them, each computes its part, and one trainer.step
applies the gradients summed over all of them. Loss sums and correct counts stay NDArrays on
their devices and are read once per epoch, so the loop never waits for the device per batch.
"""
import sys
import time
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from tqdm import tqdm

from data import batches


class LinearDecay(mx.lr_scheduler.LRScheduler):
    """lr = base_lr * (1 - progress), progress = updates done / total_updates.

    A function of the update count alone: MXNet's optimizer calls it with num_update = 1 for the
    first update, so update k (1-based) uses base_lr * (1 - (k - 1) / total_updates). The last
    update uses base_lr / total_updates and the rate after it is 0. A resumed Trainer whose
    optimizer starts at begin_num_update continues the same line.
    """

    def __init__(self, total_updates, base_lr=0.1):
        super().__init__(base_lr=base_lr)
        if total_updates < 1:
            raise ValueError("total_updates must be at least 1, got %r" % total_updates)
        self.total_updates = total_updates

    def __call__(self, num_update):
        progress = min(max(num_update - 1, 0), self.total_updates) / self.total_updates
        return self.base_lr * (1.0 - progress)


@dataclass
class TrainState:
    """What a training run carries from epoch to epoch."""
    net: gluon.HybridBlock
    trainer: gluon.Trainer
    ctx: list
    rng: np.random.RandomState  # shuffles the training set
    epoch: int = 0  # epochs completed
    loss_fn: gluon.loss.Loss = field(default_factory=gluon.loss.SoftmaxCrossEntropyLoss)


def make_trainer(net, lr, momentum, total_updates, kvstore="device"):
    """Plain SGD with momentum (not Nesterov), no weight decay, linear decay to 0.

    kvstore: with several contexts the Trainer must aggregate gradients through a kvstore
    ('device' or 'local'); with kvstore=None each copy would update from its own gradient and
    the copies would silently drift apart.
    """
    return gluon.Trainer(
        net.collect_params(), "sgd",
        {"learning_rate": lr, "momentum": momentum, "wd": 0.0,
         "lr_scheduler": LinearDecay(total_updates, base_lr=lr)},
        kvstore=kvstore)


def split(x, y, ctx):
    """Splits a batch across contexts (batches() guarantees at least one image per context)."""
    return (gluon.utils.split_and_load(x, ctx, even_split=False),
            gluon.utils.split_and_load(y, ctx, even_split=False))


def _tally(totals, outputs, labels, losses=None):
    """Adds correct counts (and loss sums) to per-device NDArray accumulators; no sync."""
    for i, (out, label) in enumerate(zip(outputs, labels)):
        totals["correct"][i] += (out.argmax(axis=1) == label).sum()
        if losses is not None:
            totals["loss"][i] += losses[i].sum()


def _zeros(ctx):
    return {"correct": [mx.nd.zeros((1,), ctx=c) for c in ctx],
            "loss": [mx.nd.zeros((1,), ctx=c) for c in ctx]}


def _read(accumulators):
    """One sync: the sum over devices of an accumulator list, as a Python float."""
    return float(sum(a.asscalar() for a in accumulators))


def train_one_epoch(state, x, y, batch_size, progress=None):
    """Trains one pass over (x, y) in a fresh random order. Returns the epoch's metrics."""
    totals = _zeros(state.ctx)
    start = time.time()
    for data, label in batches(x, y, batch_size, state.rng, min_size=len(state.ctx)):
        xs, ys = split(data, label, state.ctx)
        with autograd.record():
            outputs = [state.net(part) for part in xs]
            losses = [state.loss_fn(out, lab) for out, lab in zip(outputs, ys)]
        autograd.backward(losses)
        state.trainer.step(data.shape[0])  # gradients are sums over the batch: this makes a mean
        _tally(totals, outputs, ys, losses)
        if progress is not None:
            progress.update(data.shape[0])
    n = x.shape[0]
    loss, correct = _read(totals["loss"]), _read(totals["correct"])  # the epoch's only sync
    seconds = time.time() - start
    state.epoch += 1
    return {"train_loss": loss / n, "train_acc": correct / n, "lr": state.trainer.learning_rate,
            "epoch_time": seconds, "images_per_sec": n / seconds}


def evaluate(net, x, y, ctx, batch_size):
    """Accuracy on (x, y), in the given order, with batches as large as in training.

    The batch size matters for the spec's network: it normalises with each batch's statistics.
    """
    totals = _zeros(ctx)
    for data, label in batches(x, y, batch_size, min_size=len(ctx)):
        xs, ys = split(data, label, ctx)
        _tally(totals, [net(part) for part in xs], ys)
    return {"test_acc": _read(totals["correct"]) / x.shape[0]}


def fit(state, data, epochs, batch_size, run_log, saver=None, show_progress=False):
    """Trains from state.epoch up to `epochs`, evaluating, logging (and saving) after every epoch."""
    start = time.time()
    while state.epoch < epochs:
        with _progress_bar(data.train_x.shape[0], state.epoch, epochs, show_progress) as bar:
            train = train_one_epoch(state, data.train_x, data.train_y, batch_size, bar)
        test = evaluate(state.net, data.test_x, data.test_y, state.ctx, batch_size)
        run_log.log_epoch(epoch_record(state.epoch - 1, train, test, start),
                          step=state.trainer.optimizer.num_update)
        if saver is not None:
            saver.after_epoch(state, last=state.epoch == epochs)


def confusion_matrix(net, x, y, ctx, batch_size, num_classes):
    """counts[true][predicted] over (x, y), batched as in evaluate (one sync per batch: end of run only)."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    for data, label in batches(x, y, batch_size, min_size=len(ctx)):
        xs, ys = split(data, label, ctx)
        for out, lab in zip([net(part) for part in xs], ys):
            np.add.at(counts, (lab.asnumpy().astype(int), out.argmax(axis=1).asnumpy().astype(int)), 1)
    return counts.tolist()


def _progress_bar(total, epoch, epochs, enabled):
    return tqdm(total=total, desc="epoch %d/%d" % (epoch + 1, epochs), unit="img", leave=False,
                file=sys.stderr, disable=not (enabled and sys.stderr.isatty()))


def epoch_record(epoch, train_metrics, eval_metrics, start_time):
    """The per-epoch metrics under their stable names; time is seconds since training started."""
    record = {"epoch": epoch,
              "train_loss": train_metrics["train_loss"],
              "train_acc": train_metrics["train_acc"],
              "test_acc": eval_metrics["test_acc"],
              "lr": train_metrics["lr"],
              "time": time.time() - start_time,
              "images_per_sec": train_metrics["images_per_sec"],
              "epoch_time": train_metrics["epoch_time"]}
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}
