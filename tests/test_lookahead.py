"""Lookahead (training/lookahead.py) on a toy: the average and the network follow airbench94's
formula, for weights and running statistics, on every device, and a resume continues it."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from training.lookahead import Lookahead, decay_at


def toy(ctx):
    """A Dense layer and a BatchNorm: a weight and running statistics."""
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(2, in_units=3, use_bias=False), gluon.nn.BatchNorm(in_channels=2))
    net.initialize(mx.init.Constant(0.0), ctx=ctx)
    return net


def test_the_average_follows_the_formula_and_the_network_takes_it():
    ctx = [mx.cpu(0), mx.cpu(1)]
    net = toy(ctx)
    params = net.collect_params()
    total = 12
    lookahead = Lookahead(params, total_updates=total)
    names = sorted(params)
    expected = {(n, i): params[n].list_data()[i].asnumpy().copy() for n in names for i in range(2)}
    rng = np.random.RandomState(0)
    for update in range(1, total + 1):
        for n in names:  # an "update": every value moves, each device's copy its own way
            for i, data in enumerate(params[n].list_data()):
                data[:] = data + mx.nd.array(rng.normal(size=data.shape))
        moved = {(n, i): params[n].list_data()[i].asnumpy().copy() for n in names for i in range(2)}
        lookahead.after_update(update)
        decays = ([0.95 ** 5 * (update / total) ** 3] if update % 5 == 0 else []) + ([1.0] if update == total else [])
        for key in expected:
            values = moved[key]
            for decay in decays:
                expected[key] = decay * expected[key] + (1 - decay) * values
                values = expected[key]
            got = params[key[0]].list_data()[key[1]].asnumpy()
            np.testing.assert_allclose(got, values, rtol=1e-5, atol=1e-6, err_msg="%s at %d" % (key, update))
    assert any("running_mean" in n for n in names) and any("weight" in n for n in names)
    assert decay_at(5, 10) == pytest.approx(0.95 ** 5 / 8)


def test_a_resume_continues_the_same_average():
    net, again = toy([mx.cpu()]), toy([mx.cpu()])
    first = Lookahead(net.collect_params(), total_updates=10)
    for p in net.collect_params().values():
        p.data()[:] = p.data() + 1.0
    first.after_update(5)
    second = Lookahead(again.collect_params(), total_updates=10)
    for mine, theirs in zip(again.collect_params().values(), net.collect_params().values()):
        mine.set_data(theirs.data())
    second.load_state(first.state())
    for a, b in zip(first.average, second.average):
        np.testing.assert_array_equal(a[0].asnumpy(), b[0].asnumpy())
