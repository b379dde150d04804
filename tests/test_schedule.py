"""The linear learning-rate decay, alone and inside gluon.Trainer."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from training.schedules import LinearDecay

EPOCHS, ITERS = 5, 79  # the spec's 2-class task: 10,000 images in batches of 128


def spec_lr(epoch, i):
    """The spec's formula for iteration i (0-based) of epoch `epoch`."""
    return 0.1 * (1 - (epoch + i / ITERS) / EPOCHS)


def test_values_follow_the_spec_at_every_iteration():
    schedule = LinearDecay(EPOCHS * ITERS, base_lr=0.1)
    assert schedule(1) == pytest.approx(0.1)  # MXNet counts the first update as num_update 1
    for epoch in range(EPOCHS):
        assert schedule(epoch * ITERS + 1) == pytest.approx(0.1 * (1 - epoch / EPOCHS))
        for i in range(ITERS):
            assert schedule(epoch * ITERS + i + 1) == pytest.approx(spec_lr(epoch, i))


def test_last_update_is_positive_and_the_rate_after_it_is_zero():
    total = EPOCHS * ITERS
    schedule = LinearDecay(total, base_lr=0.1)
    assert schedule(total) == pytest.approx(0.1 / total) and schedule(total) > 0
    assert schedule(total + 1) == pytest.approx(0.0, abs=1e-12)
    assert schedule(10 * total) == pytest.approx(0.0, abs=1e-12)


def test_monotone_non_increasing():
    schedule = LinearDecay(EPOCHS * ITERS, base_lr=0.1)
    values = [schedule(n) for n in range(0, EPOCHS * ITERS + 3)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[1] > values[-4]


def test_rejects_an_empty_run():
    with pytest.raises(ValueError):
        LinearDecay(0)


def _sgd_on_one_weight(schedule, steps, begin_num_update=0):
    """Plain SGD (no momentum) on w with gradient 1: w drops by exactly the lr of each update."""
    w = gluon.Parameter("w", shape=(1,), init=mx.init.Zero())
    w.initialize()
    trainer = gluon.Trainer([w], "sgd", {"learning_rate": schedule.base_lr, "lr_scheduler": schedule,
                                         "begin_num_update": begin_num_update})
    drops = []
    for _ in range(steps):
        before = w.data().asscalar()
        with autograd.record():
            y = w.data() * 1.0
        y.backward()
        trainer.step(1)
        drops.append(before - w.data().asscalar())
    return drops, trainer


def test_trainer_applies_the_schedule_each_update():
    drops, trainer = _sgd_on_one_weight(LinearDecay(10, base_lr=0.1), steps=10)
    np.testing.assert_allclose(drops, [0.1 * (1 - k / 10) for k in range(10)], rtol=1e-5)
    assert trainer.learning_rate == pytest.approx(0.01)  # the rate of the last update


def test_a_trainer_resumed_at_an_update_count_continues_the_same_line():
    drops, _ = _sgd_on_one_weight(LinearDecay(10, base_lr=0.1), steps=4, begin_num_update=6)
    np.testing.assert_allclose(drops, [0.1 * (1 - k / 10) for k in range(6, 10)], rtol=1e-5)


def test_the_fast_recipes_schedule_rises_from_0_2_to_1_over_23_percent_then_falls_to_0_07():
    from training.schedules import PiecewiseLinear

    total, base = 1000, 2.0
    schedule = PiecewiseLinear(total, [(0, 0.2), (0.23, 1.0), (1, 0.07)], base_lr=base)
    warmup = int(total * 0.23)  # 230 updates

    def airbench94(step):  # the reference's factor of `step` updates done
        if step < warmup:
            f = step / warmup
            return 0.2 * (1 - f) + f
        f = (step - warmup) / (total - warmup)
        return (1 - f) + 0.07 * f

    assert schedule(1) == pytest.approx(base * 0.2)  # the first update
    assert schedule(warmup + 1) == pytest.approx(base * 1.0)  # the peak
    assert schedule(total + 1) == pytest.approx(base * 0.07)  # after the last update
    for update in (1, 2, 100, 230, 231, 232, 600, 999, 1000):
        assert schedule(update) == pytest.approx(base * airbench94(update - 1)), update
    with pytest.raises(ValueError, match="knots must rise"):
        PiecewiseLinear(10, [(0.1, 1.0), (1, 0.0)])
