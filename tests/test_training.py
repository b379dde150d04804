"""The training step on several contexts, an epoch and its metrics, evaluation."""
import io

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from helpers import make_state
from training.loop import IN_FLIGHT, IntervalReport, evaluate, train_one_epoch

TWO_CPUS = [mx.cpu(0), mx.cpu(1)]  # stand-ins for two GPUs: distinct devices to MXNet


def learnable_batch(n=32, seed=0, classes=2):
    """Images whose class is their mean colour: a loss that can fall within a few steps."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 3, 32, 32)) + (y * 2.0 - 1.0).reshape(-1, 1, 1, 1)
    return mx.nd.array(x), mx.nd.array(y)


def copies_differ(net):
    """Largest difference between the copies of any parameter on different contexts."""
    worst = 0.0
    for p in net.collect_params().values():
        copies = [d.asnumpy() for d in p.list_data()]
        worst = max(worst, max(np.abs(c - copies[0]).max() for c in copies))
    return worst


def run_epochs(state, x, y, epochs, batch_size=16):
    return [train_one_epoch(state, x, y, batch_size) for _ in range(epochs)]


@pytest.mark.parametrize("kvstore", ["device", "local"])
def test_two_contexts_keep_identical_copies_and_the_loss_falls(kvstore):
    x, y = learnable_batch(32)
    state = make_state(TWO_CPUS, kvstore=kvstore)
    history = []
    for _ in range(4):
        history.append(train_one_epoch(state, x, y, batch_size=16))
        assert copies_differ(state.net) == 0.0
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


def test_without_a_kvstore_the_copies_would_drift_apart():
    # Why make_trainer always passes a kvstore: this is the failure the test above guards against.
    x, y = learnable_batch(32)
    state = make_state(TWO_CPUS, kvstore=None)
    run_epochs(state, x, y, epochs=1)
    assert copies_differ(state.net) > 1e-4


def test_two_contexts_compute_what_one_context_computes_on_the_same_halves():
    # Splitting a batch over two devices = the gradient of the whole batch, each half normalised
    # with its own statistics. Check against one device fed the two halves and one summed update.
    x, y = learnable_batch(16)
    multi = make_state(TWO_CPUS)
    single = make_state([mx.cpu(0)])
    train_one_epoch(multi, x, y, batch_size=16)
    order = mx.nd.array(np.random.RandomState(0).permutation(16))  # the epoch's shuffle (seed 0)
    x, y = x[order], y[order]
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        losses = [loss_fn(single.net(x[i:i + 8]), y[i:i + 8]) for i in (0, 8)]
    autograd.backward(losses)
    single.trainer.step(16)
    for pm, ps in zip(multi.net.collect_params().values(), single.net.collect_params().values()):
        np.testing.assert_allclose(pm.data(mx.cpu(1)).asnumpy(), ps.data().asnumpy(), rtol=1e-4, atol=1e-6)


def test_epoch_metrics_count_every_image_once():
    x, y = learnable_batch(40)  # 40 = 2 batches of 16 + one of 8
    state = make_state([mx.cpu()])
    metrics = train_one_epoch(state, x, y, batch_size=16)
    assert state.epoch == 1
    assert set(metrics) == {"train_loss", "train_acc", "lr", "epoch_time", "images_per_sec"}
    assert 0 <= metrics["train_acc"] <= 1 and metrics["train_loss"] > 0
    assert round(metrics["train_acc"] * 40) == pytest.approx(metrics["train_acc"] * 40)
    assert metrics["lr"] == pytest.approx(0.05 * (1 - 2 / 100))  # the lr of update 3
    assert state.trainer.optimizer.num_update == 3


def test_evaluate_counts_correct_predictions_exactly():
    x, y = learnable_batch(48, seed=3)
    state = make_state([mx.cpu()])
    run_epochs(state, x, y, epochs=5)
    acc = evaluate(state.net, x, y, state.ctx, batch_size=16)[0]["test_acc"]
    by_hand = np.mean([(state.net(x[i:i + 16]).argmax(axis=1) == y[i:i + 16]).asnumpy()
                       for i in range(0, 48, 16)])
    assert acc == pytest.approx(by_hand) and acc > 0.9


def test_evaluate_counts_the_confusion_matrix_on_several_devices():
    x, y = learnable_batch(40, seed=3, classes=3)
    state = make_state(TWO_CPUS, num_classes=3)  # untrained: its predictions are mixed
    metrics, matrix = evaluate(state.net, x, y, state.ctx, batch_size=40)  # 20 images per device
    predicted = np.concatenate([state.net(x[i:i + 20]).argmax(axis=1).asnumpy() for i in (0, 20)])
    by_hand = np.zeros((3, 3), dtype=int)
    np.add.at(by_hand, (y.asnumpy().astype(int), predicted.astype(int)), 1)
    assert matrix == by_hand.tolist()
    assert 0 < np.trace(by_hand) < 40 and metrics["test_acc"] == pytest.approx(np.trace(by_hand) / 40)


def test_a_remainder_smaller_than_the_number_of_devices_joins_the_previous_batch():
    x, y = learnable_batch(7)
    state = make_state(TWO_CPUS + [mx.cpu(2)])
    train_one_epoch(state, x, y, batch_size=3)  # 3 + 3 + 1: the 1 image joins the second batch
    assert state.trainer.optimizer.num_update == 2
    assert copies_differ(state.net) == 0.0


def test_the_interval_report_comes_every_k_batches_with_the_running_loss():
    x, y = learnable_batch(64)
    state = make_state([mx.cpu()])
    stream = io.StringIO()
    metrics = train_one_epoch(state, x, y, batch_size=8, interval_report=IntervalReport(4, stream))
    lines = stream.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 0 batch 4", "epoch 0 batch 8"]
    assert all(float(line.split()[4]) > 0 for line in lines)  # images/s
    # After the last batch the running loss is the epoch's mean loss.
    assert float(lines[-1].split()[-1]) == pytest.approx(metrics["train_loss"], abs=1e-6)
    assert float(lines[0].split()[-1]) != pytest.approx(metrics["train_loss"], abs=1e-6)


class UpdateRecord:
    """A progress bar's update() calls: (images, updates the trainer had queued at that moment)."""

    def __init__(self, trainer):
        self.trainer, self.calls = trainer, []

    def update(self, images):
        self.calls.append((images, self.trainer.optimizer.num_update))


def test_the_progress_bar_counts_batches_once_finished_trailing_the_queued_ones():
    x, y = learnable_batch(64)
    state = make_state([mx.cpu()])
    bar = UpdateRecord(state.trainer)
    train_one_epoch(state, x, y, batch_size=8, progress=bar)
    # 8 batches: each is counted once the batch after it has run forward, IN_FLIGHT behind
    # the one just queued; the last IN_FLIGHT together after the epoch's sync.
    assert [queued for _, queued in bar.calls] == [k + 1 + IN_FLIGHT for k in range(8 - IN_FLIGHT)] + [8]
    assert [images for images, _ in bar.calls] == [8] * (8 - IN_FLIGHT) + [8 * IN_FLIGHT]


def test_drop_last_trains_on_whole_batches_only():
    x, y = learnable_batch(40)
    state = make_state([mx.cpu()])
    state.drop_last = True
    metrics = train_one_epoch(state, x, y, batch_size=16)  # 16 + 16; the 8 left over are dropped
    assert state.trainer.optimizer.num_update == 2
    assert round(metrics["train_acc"] * 32, 6) == round(metrics["train_acc"] * 32)


def test_an_interrupt_during_the_end_of_an_epoch_waits_until_it_is_reported_and_saved():
    import os
    import signal

    from common import interrupts

    before = signal.getsignal(signal.SIGTERM)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.held():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("reported")
            done.append("saved")
    assert done == ["reported", "saved"]
    assert signal.getsignal(signal.SIGTERM) is before  # restored
