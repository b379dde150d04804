"""The fast recipe's loss and test-time augmentation against numpy and their invariances."""
import mxnet as mx
import numpy as np
from mxnet import gluon

from training.losses import SmoothedCrossEntropy
from training.tta import TTAModel


def test_the_smoothed_loss_equals_numpys():
    rng = np.random.RandomState(0)
    pred, label = rng.normal(size=(6, 10)) * 3, rng.randint(0, 10, size=6)
    loss = SmoothedCrossEntropy(10, smoothing=0.2)
    got = loss(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    logp = pred - np.log(np.exp(pred).sum(axis=1, keepdims=True))
    target = np.full((6, 10), 0.02)
    target[np.arange(6), label] = 0.82
    np.testing.assert_allclose(got, -(target * logp).sum(axis=1), rtol=1e-5)
    plain = gluon.loss.SoftmaxCrossEntropyLoss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(SmoothedCrossEntropy(10, 0.0)(mx.nd.array(pred), mx.nd.array(label)).asnumpy(),
                               plain, rtol=1e-5)  # no smoothing: Gluon's own


def small_net():
    """A small network as a callable from numpy images to numpy logits (as predict.py's models are)."""
    mx.random.seed(0)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=3), gluon.nn.Dense(5))
    net.initialize()
    return lambda images: net(mx.nd.array(images)).asnumpy()


def test_tta_of_a_mirror_symmetric_input_equals_the_plain_prediction():
    net = small_net()
    half = np.random.RandomState(1).normal(size=(3, 3, 8, 4)).astype(np.float32)
    x = np.concatenate([half, half[:, :, :, ::-1]], axis=3)  # mirror-symmetric
    np.testing.assert_allclose(TTAModel(net, 1)(x), net(x), rtol=1e-5, atol=1e-6)
    flat = np.ones((2, 3, 8, 8), np.float32) * np.float32([0.5, -1.0, 2.0]).reshape((1, 3, 1, 1))  # and translation-invariant
    np.testing.assert_allclose(TTAModel(net, 2)(flat), net(flat), rtol=1e-5, atol=1e-6)
    asymmetric = np.concatenate([half, half], axis=3)
    assert not np.allclose(TTAModel(net, 1)(asymmetric), net(asymmetric), atol=1e-3)


def test_tta_weights_the_views_as_airbench94_does():
    net = small_net()
    x = np.random.RandomState(2).normal(size=(2, 3, 8, 8)).astype(np.float32)
    mirror = lambda v: 0.5 * net(v) + 0.5 * net(v[:, :, :, ::-1])  # noqa: E731
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    expected = 0.5 * mirror(x) + 0.25 * (mirror(padded[:, :, :8, :8]) + mirror(padded[:, :, 2:, 2:]))
    np.testing.assert_allclose(TTAModel(net, 2)(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(TTAModel(net, 0)(x), net(x), rtol=1e-6)
