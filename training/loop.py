"""The training loop: one epoch of training, evaluation, and fit() over the epochs of a run.

Plain functions over a small TrainState (state.py). Every step runs on a list of contexts (one GPU, several
GPUs, or CPUs): the batch is split across them, each computes its part, and one trainer.step
applies the gradients summed over all of them. Loss sums and correct counts stay NDArrays on
their devices and are read once per epoch; the loop waits for the device only to keep at most
IN_FLIGHT batches queued ahead of the last finished one.
"""
import collections
import math
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from common import interrupts
from common.memory import return_freed_memory
from common.progress import progress_bar
from data import batches, num_batches, shuffled_batches

from . import metrics, precision
from .saved_model import MXNetNet
from .tta import TTAModel

# Batches the loop queues ahead of the last finished one: enough to keep MXNet's engine fed, few
# enough that the memory of queued batches stays bounded (unbounded, a loop without a progress bar
# queues as far ahead as Python gets; with airbench94's batches of 1,024 images each queued batch
# holds about 50 MB of augmentation buffers).
IN_FLIGHT = 2


def split(x, y, ctx):
    """Splits a batch across contexts (batches() guarantees at least one image per context)."""
    return (gluon.utils.split_and_load(x, ctx, even_split=False),
            gluon.utils.split_and_load(y, ctx, even_split=False))


def _tally(totals, outputs, labels, losses):
    """Adds correct counts and loss sums to per-device NDArray accumulators; no sync."""
    for i, (out, label) in enumerate(zip(outputs, labels)):
        totals["correct"][i] += (out.argmax(axis=1) == label).sum()
        totals["loss"][i] += losses[i].sum()


def _zeros(ctx):
    return {"correct": [mx.nd.zeros((1,), ctx=c) for c in ctx],
            "loss": [mx.nd.zeros((1,), ctx=c) for c in ctx]}


def _sum_to_float(accumulators):
    """One sync: the sum over devices of an accumulator list, as a Python float."""
    return float(sum(a.asscalar() for a in accumulators))


class IntervalReport:
    """Every `interval` batches: images per second since the last report and the epoch's running
    training loss, on stderr (what MXNet's Speedometer prints). Reading the loss waits for the
    device, so this is one sync per report; without it the loop has none until the epoch ends.
    """

    def __init__(self, interval, stream=None):
        self.interval = interval
        self.stream = stream or sys.stderr
        self.epoch, self.last_time, self.last_seen = 0, 0.0, 0

    def start(self, epoch):
        self.epoch, self.last_time, self.last_seen = epoch, time.time(), 0

    def after_batch(self, batch, seen, totals):
        """batch: 0-based index in the epoch; seen: images trained on so far in the epoch."""
        if (batch + 1) % self.interval:
            return
        loss = _sum_to_float(totals["loss"]) / seen
        now = time.time()
        speed = (seen - self.last_seen) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_seen = now, seen
        print("epoch %d batch %d: %.1f images/s, train_loss %.6f"
              % (self.epoch, batch + 1, speed, loss), file=self.stream, flush=True)


def train_step(state, data, label):
    """One update on a batch, split across state.ctx: forward, loss, backward, the Trainer's
    step, then the recipe's after-update work. Returns (outputs, losses, labels) per device, not
    waited for."""
    xs, ys = split(data, label, state.ctx)
    with autograd.record():
        outputs = [state.net(part) for part in xs]
        losses = [state.loss_fn(out, lab) for out, lab in zip(outputs, ys)]
        precision.backward(losses, state.trainer)  # recorded: under --amp it scales them first
    # Gradients are sums over the batch (and over the workers of a dist_sync job): a mean.
    state.trainer.step(data.shape[0] * state.step_batches)
    if state.hooks is not None:
        state.hooks.after_update(state.trainer.optimizer.num_update)
    return outputs, losses, ys


def epoch_batches(state, images, batch_size):
    """Batches of state.epoch: a whole epoch's, or what is left of the run's in its last epoch."""
    whole = num_batches(images, batch_size, min_size=len(state.ctx), drop_last=state.drop_last)
    if state.run_batches is None:
        return whole
    return min(whole, state.run_batches - state.epoch * whole)


def train_one_epoch(state, x, y, batch_size, progress=None, interval_report=None):
    """Trains one pass over (x, y) in a fresh random order (the run's last epoch may end early).
    Returns the epoch's metrics.

    MXNet's engine runs behind the Python loop that queues its work: a batch counts as finished
    once the forward pass of the batch after it is done (it reads the weights the finished
    batch's update wrote), and the loop waits for that IN_FLIGHT batches behind the one it
    queued. progress: a bar to advance by the images of each finished batch.
    """
    totals = _zeros(state.ctx)
    start, n = time.time(), 0
    queued = collections.deque()  # (losses, images) of the batches not yet seen finished
    if interval_report is not None:
        interval_report.start(state.epoch)
    if state.hooks is not None:
        state.hooks.start_epoch(state.epoch)
    for i, (indices, data, label) in enumerate(shuffled_batches(
            x, y, batch_size, state.rng, min_size=len(state.ctx), drop_last=state.drop_last,
            limit=epoch_batches(state, x.shape[0], batch_size))):
        interrupts.reach("training")
        if state.augment is not None:
            data = state.augment(data, indices, state.epoch, state.rng)
        outputs, losses, ys = train_step(state, data, label)
        _tally(totals, outputs, ys, losses)
        n += data.shape[0]
        queued.append((losses, data.shape[0]))
        if len(queued) > IN_FLIGHT:
            for part in queued[1][0]:  # the next batch's forward pass: this one is finished
                part.wait_to_read()
            finished = queued.popleft()[1]
            if progress is not None:
                progress.update(finished)
        if interval_report is not None:
            interval_report.after_batch(i, n, totals)
    # The epoch's one read of its totals.
    loss, correct = _sum_to_float(totals["loss"]), _sum_to_float(totals["correct"])
    if progress is not None:
        progress.update(sum(images for _, images in queued))
    seconds = time.time() - start
    state.epoch += 1
    return {"train_loss": loss / n, "train_acc": correct / n, "lr": state.trainer.learning_rate,
            "epoch_time": seconds, "images_per_sec": n / seconds}


def evaluate(net, x, y, ctx, batch_size):
    """Accuracy on (x, y), in the given order, with batches as large as in training, and the
    confusion matrix it comes from: ({"test_acc": ...}, counts[true][predicted] as lists).

    The batch size matters for the spec's network: it normalises with each batch's statistics.
    The counts stay NDArrays on their devices until the end (one sync).
    """
    counts = [0] * len(ctx)  # per device: NDArrays of classes^2 counts after the first batch
    for data, label in batches(x, y, batch_size, min_size=len(ctx)):
        xs, ys = split(data, label, ctx)
        for i, (part, lab) in enumerate(zip(xs, ys)):
            out = net(part)
            classes = out.shape[1]
            pairs = lab * classes + out.argmax(axis=1)  # (true, predicted) as one number
            found = mx.nd.histogram(pairs, bins=classes * classes, range=(0, classes * classes))[0]
            counts[i] = counts[i] + found
    matrix = sum(c.asnumpy() for c in counts).reshape(classes, classes)
    return {"test_acc": float(np.trace(matrix)) / x.shape[0]}, matrix.tolist()


def evaluate_tta(net, x, y, ctx, batch_size, level):
    """Accuracy on (x, y) with test-time augmentation of `level` (training/tta.py), on ctx[0]
    and as predict.py computes it (the networks that use it normalise with running statistics)."""
    model = TTAModel(MXNetNet(net, ctx[0], batch_statistics=False), level)
    images, labels = x.asnumpy(), y.asnumpy()
    predicted = np.concatenate([model(images[start:start + batch_size]).argmax(axis=1)
                                for start in range(0, len(images), batch_size)])
    return {"tta_test_acc": float((predicted == labels).mean())}


class TrainingDiverged(Exception):
    """An epoch's training loss was not finite: the weights are broken and must not be saved."""

    def __init__(self, epoch, loss):
        super().__init__("the training loss became %s in epoch %d" % (loss, epoch))
        self.epoch, self.loss = epoch, loss


def fit(state, data, epochs, batch_size, run_log, saver=None, show_progress=False, interval_report=None):
    """Trains from state.epoch up to `epochs`, evaluating, logging (and saving) after every epoch;
    returns the last epoch's record (its JSON line) and its evaluation's confusion matrix.

    Raises TrainingDiverged after an epoch whose training loss is not finite, before anything of
    it is logged or saved (the loss is the value the epoch reads anyway: no extra device sync).
    """
    start = time.time()
    while state.epoch < epochs:
        with progress_bar(data.train_x.shape[0], "epoch %d/%g" % (state.epoch + 1, epochs),
                          show_progress, unit="img", leave=False) as bar:
            train = train_one_epoch(state, data.train_x, data.train_y, batch_size,
                                    None if bar.disable else bar, interval_report)
        if not math.isfinite(train["train_loss"]):
            raise TrainingDiverged(state.epoch - 1, train["train_loss"])
        test, confusion = evaluate(state.net, data.test_x, data.test_y, state.ctx, batch_size)
        if state.tta_level and state.epoch >= epochs:
            test.update(evaluate_tta(state.net, data.test_x, data.test_y, state.ctx, batch_size,
                                     state.tta_level))
        return_freed_memory()  # what training and evaluation each freed when the other ran
        record = epoch_record(state.epoch - 1, train, test, start)
        with interrupts.held():  # an epoch is reported and saved together, or neither
            run_log.log_epoch(record, step=state.trainer.optimizer.num_update)
            if saver is not None:
                saver.after_epoch(state, last=state.epoch >= epochs)
        interrupts.reach("training", point="epoch")  # epochs done: what a test may stop after
    return record, confusion


def epoch_record(epoch, train_metrics, eval_metrics, start_time):
    """The epoch's JSON record (training/metrics.py); time is seconds since training started."""
    return metrics.record(dict(train_metrics, **eval_metrics, epoch=epoch, time=time.time() - start_time))
