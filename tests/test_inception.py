"""The spec material's Inception networks: shapes, hybridized == imperative, RReLU, training."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import models
from helpers import run_cli
from models.inception import RRELU_LOWER, RRELU_UPPER, InceptionBNSmall, RReLU, SubInceptionRReLU

NETWORKS = [("sub-inception-rrelu", SubInceptionRReLU, 100), ("inception-bn-small", InceptionBNSmall, 10)]


def built(name, num_classes, seed=0, hybridize=False):
    mx.random.seed(seed)
    net = models.build(name, num_classes)
    models.initialize(net, name, mx.cpu())
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net


@pytest.mark.parametrize("name, cls, classes", NETWORKS)
def test_shapes_through_the_stages(name, cls, classes):
    net = built(name, classes)
    assert isinstance(net, cls) and models.input_size(name) == 28
    x = mx.nd.random.normal(shape=(2, 3, 28, 28))
    sizes = []
    for block in net.features:
        x = block(x)
        sizes.append(x.shape[1:])
    assert net(mx.nd.zeros((2, 3, 28, 28))).shape == (2, classes)
    if cls is SubInceptionRReLU:  # 3a 3b (28x28), 3c down to 14x14, ..., 4e down to 7x7, 5a 5b
        assert [s[0] for s in sizes[:10]] == [256, 320, 576, 576, 576, 608, 608, 1056, 1024, 1024]
        assert [s[1] for s in sizes[:10]] == [28, 28, 14, 14, 14, 14, 14, 7, 7, 7]
    else:  # conv 96, 3a 3b, 3c down, 4a-4d, 4e down, 5a 5b
        assert [s[0] for s in sizes[:11]] == [96, 64, 80, 160, 160, 160, 160, 144, 240, 336, 336]
        assert [s[1] for s in sizes[:11]] == [28, 28, 28, 14, 14, 14, 14, 14, 7, 7, 7]


@pytest.mark.parametrize("name, cls, classes", NETWORKS)
def test_hybridized_equals_imperative(name, cls, classes, monkeypatch):
    x = mx.nd.random.normal(shape=(4, 3, 28, 28))
    net = built(name, classes, seed=1)
    outputs = [net(x).asnumpy()]  # evaluation: RReLU's mean slope, running BatchNorm statistics
    net.hybridize(static_alloc=True, static_shape=True)
    outputs.append(net(x).asnumpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    # Training gradients, with RReLU's slope range closed to one value so that both runs use the
    # same slopes (training uses batch statistics, so the order of the runs does not matter).
    monkeypatch.setattr("models.inception.RRELU_LOWER", 0.2)
    monkeypatch.setattr("models.inception.RRELU_UPPER", 0.2)
    grads = []
    for hybridize in (False, True):
        net.hybridize(active=hybridize, static_alloc=True, static_shape=True)  # traces anew
        with autograd.record():
            loss = net(x).sum()
        loss.backward()
        grads.append({k: p.grad().asnumpy() for k, p in net.collect_params().items()
                      if p.grad_req != "null"})
    scale = max(np.abs(g).max() for g in grads[0].values())
    for key in grads[0]:
        np.testing.assert_allclose(grads[0][key], grads[1][key], atol=1e-4 * scale, err_msg=key)


@pytest.mark.parametrize("hybridize", [False, True])
def test_rrelu_is_random_in_training_and_the_mean_slope_in_evaluation(hybridize):
    block = RReLU()
    if hybridize:
        block.hybridize()
    x = mx.nd.array(np.linspace(-3, 3, 4000).reshape(40, 100))
    negative = x.asnumpy() < 0
    mean = (RRELU_LOWER + RRELU_UPPER) / 2
    evaluated = (block(x) / x).asnumpy()
    np.testing.assert_allclose(evaluated[negative], mean, rtol=1e-5)
    np.testing.assert_allclose(evaluated[~negative], 1.0)
    x.attach_grad()
    with autograd.record():  # training
        y = block(x)
    y.backward()
    slopes = (y / x).asnumpy()[negative]
    assert RRELU_LOWER <= slopes.min() and slopes.max() <= RRELU_UPPER and slopes.std() > 0.05
    np.testing.assert_allclose(x.grad.asnumpy()[negative], slopes, rtol=1e-5)  # d/dx = its slope
    with autograd.record():
        again = (block(x) / x).asnumpy()[negative]
    assert not np.allclose(again, slopes)  # drawn anew on every call
    # The network's evaluation is the same with MXNet's own rrelu there (which works only there).
    own = mx.nd.LeakyReLU(x, act_type="rrelu", lower_bound=RRELU_LOWER, upper_bound=RRELU_UPPER)
    np.testing.assert_allclose(block(x).asnumpy(), (own[0] if isinstance(own, list) else own).asnumpy(),
                               rtol=1e-5)


@pytest.mark.parametrize("name, cls, classes", NETWORKS)
def test_a_short_training_lowers_the_loss(name, cls, classes):
    rng = np.random.RandomState(0)
    y = np.arange(16) % 2
    x = mx.nd.array(rng.normal(size=(16, 3, 28, 28)) + (2.0 * y - 1).reshape(-1, 1, 1, 1))
    y = mx.nd.array(y)
    net = built(name, 2, hybridize=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for _ in range(3):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(16)
        losses.append(loss.mean().asscalar())
    assert losses[-1] < 0.5 * losses[0], losses


def test_train_cifar10_trains_an_inception_on_28x28_crops(data_dir, tmp_path):
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--quiet",
                     "--model", "inception-bn-small", "--batch-size", "32", "--lr", "0.05",
                     "--output-dir", str(tmp_path / "run"), "--export", str(tmp_path / "ex"))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    meta = json.load(open(tmp_path / "ex-meta.json"))
    assert meta["input_size"] == 28 and meta["model"] == "inception-bn-small"
