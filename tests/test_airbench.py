"""airbench94's network in Gluon (models/airbench.py) against its definition: a plain numpy
forward pass, the whitening that makes the patches' covariance the identity, the Dirac start,
and the hybridized graph equal to the imperative one."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from scipy.special import erf

from helpers import np_conv
from models.airbench import (BN_EPSILON, WHITENING_FILTERS, WIDTHS, Airbench94, ConvGroup, patches,
                             whitening_filters)


def correlated_images(n, seed=0):
    """Images whose channels and neighbouring pixels are correlated, as natural images' are."""
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, 3, 33, 33))
    x = x[:, :, 1:, 1:] + 0.6 * x[:, :, :-1, :-1]  # neighbours share part of their value
    mix = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, 0.4], [0.1, 0.6, 1.0]])
    return np.einsum("dc,nchw->ndhw", mix, x).astype(np.float32)


def built(seed=0, images=None):
    mx.random.seed(seed)
    net = Airbench94(10)
    net.initialize()
    if images is not None:
        net.whiten(images)
    return net


# ----------------------------------------------------------------------------------------------
# The definition in numpy, float64

def np_gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def np_conv_valid(x, w, b):
    k = w.shape[-1]
    h, wd = x.shape[2] - k + 1, x.shape[3] - k + 1
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", x[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out + b.reshape(1, -1, 1, 1)


def np_norm(x, bn, batch_statistics):
    if batch_statistics:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    else:
        mean, var = (bn.running_mean.data().asnumpy(), bn.running_var.data().asnumpy())
    gamma, beta = bn.gamma.data().asnumpy(), bn.beta.data().asnumpy()
    return ((x - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + BN_EPSILON)
            * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1))


def np_floor_pool(x, size):
    n, c, h, w = x.shape
    h, w = h // size * size, w // size * size
    return x[:, :, :h, :w].reshape(n, c, h // size, size, w // size, size).max(axis=(3, 5))


def np_airbench(net, x, batch_statistics):
    """airbench94's forward pass with its 24 whitening filters (the layer's channels beyond them
    are padding for speed, always 0)."""
    weight = lambda layer: layer.weight.data().asnumpy().astype(np.float64)  # noqa: E731
    x = np_gelu(np_conv_valid(x, weight(net.whitening)[:WHITENING_FILTERS],
                              net.whitening.bias.data().asnumpy()[:WHITENING_FILTERS]))
    for k, group in enumerate(net.features[2:5]):
        x = np_conv(x, weight(group.conv1)[:, :WHITENING_FILTERS] if k == 0 else weight(group.conv1))
        x = np_gelu(np_norm(np_floor_pool(x, 2), group.norm1, batch_statistics))
        x = np_gelu(np_norm(np_conv(x, weight(group.conv2)), group.norm2, batch_statistics))
    x = np_floor_pool(x, 3).reshape(len(x), -1)
    return x @ weight(net.output[0]).T / 9


# ----------------------------------------------------------------------------------------------

def test_structure_and_shapes():
    net = built()
    kinds = [type(b).__name__ for b in net.features]
    assert kinds == ["Conv2D", "GELU", "ConvGroup", "ConvGroup", "ConvGroup", "MaxPool2D", "Flatten"]
    x = mx.nd.zeros((2, 3, 32, 32))
    shapes = []
    for block in net.features:
        x = block(x)
        shapes.append(x.shape[1:])
    assert shapes == [(32, 31, 31), (32, 31, 31), (64, 15, 15), (256, 7, 7), (256, 3, 3), (256, 1, 1), (256,)]
    assert net.output(x).shape == (2, 10)
    trained = {name.rsplit("_", 1)[1] for name, p in net.collect_params().items() if p.grad_req != "null"}
    assert trained == {"bias", "weight", "beta"}  # no BN scale, no whitening weight


def test_the_padding_channels_output_zero_again_after_an_update_moved_their_bias():
    images = correlated_images(4)
    net = built(images=images)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1.0})
    with autograd.record():
        loss = net(mx.nd.array(images)).sum()
    loss.backward()
    trainer.step(4)
    moved = net.whitening(mx.nd.array(images)).asnumpy()
    assert np.abs(moved[:, WHITENING_FILTERS:]).max() > 0  # the update moved the padding's bias
    net.zero_padding()
    out = net.whitening(mx.nd.array(images)).asnumpy()
    assert np.all(out[:, WHITENING_FILTERS:] == 0)
    np.testing.assert_array_equal(out[:, :WHITENING_FILTERS], moved[:, :WHITENING_FILTERS])


@pytest.mark.parametrize("batch_statistics", [True, False], ids=["training", "evaluation"])
def test_the_network_computes_its_definition(batch_statistics):
    images = correlated_images(6)
    net = built(images=images)
    net.collect_params().zero_grad()
    # Evaluation uses the running statistics: give them values of their own first.
    for group in net.features[2:5]:
        for norm in (group.norm1, group.norm2):
            c = norm.running_mean.shape[0]
            norm.running_mean.set_data(mx.nd.array(np.linspace(-0.1, 0.1, c)))
            norm.running_var.set_data(mx.nd.array(np.linspace(0.5, 2.0, c)))
            norm.beta.set_data(mx.nd.array(np.linspace(-0.2, 0.3, c)))
    with (autograd.train_mode() if batch_statistics else autograd.predict_mode()):
        got = net(mx.nd.array(images)).asnumpy()
    expected = np_airbench(net, images.astype(np.float64), batch_statistics)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-4)


def test_hybridized_equals_imperative():
    images = mx.nd.array(correlated_images(4))
    imperative = built(seed=3, images=images.asnumpy())
    hybrid = built(seed=3, images=images.asnumpy())
    hybrid.hybridize(static_alloc=True, static_shape=True)
    for mode in (autograd.train_mode, autograd.predict_mode):
        with mode():
            np.testing.assert_allclose(hybrid(images).asnumpy(), imperative(images).asnumpy(), rtol=1e-5, atol=1e-6)


def test_the_whitening_makes_the_patches_covariance_the_identity():
    images = correlated_images(50)
    filters = whitening_filters(images)
    assert filters.shape == (WHITENING_FILTERS, 3, 2, 2)
    np.testing.assert_array_equal(filters[12:], -filters[:12])
    raw = patches(images).astype(np.float64)
    assert np.abs(raw.T @ raw / len(raw) - np.eye(12)).max() > 0.5  # far from white before
    whitened = raw @ filters[:12].reshape(12, -1).T.astype(np.float64)
    np.testing.assert_allclose(whitened.T @ whitened / len(whitened), np.eye(12), atol=5e-3)
    # The layer computes the same: its first 12 channels, over every position, are white.
    net = built(images=images)
    out = net.whitening(mx.nd.array(images)).asnumpy()[:, :12].transpose(1, 0, 2, 3).reshape(12, -1)
    assert np.all(net.whitening(mx.nd.array(images)).asnumpy()[:, WHITENING_FILTERS:] == 0)
    np.testing.assert_allclose(out @ out.T / out.shape[1], np.eye(12), atol=5e-3)


def test_the_dirac_start_passes_each_convolutions_input_through():
    mx.random.seed(1)
    group = ConvGroup(WIDTHS[0], 32, inputs=24)  # the first group: 24 of its 32 inputs carry values
    group.initialize()
    x = mx.nd.concat(mx.nd.random.normal(shape=(2, 24, 8, 8)), mx.nd.zeros((2, 8, 8, 8)), dim=1)
    y = group.conv1(x).asnumpy()
    np.testing.assert_allclose(y[:, :24], x.asnumpy()[:, :24], rtol=1e-6, atol=1e-6)
    assert np.abs(group.conv1.weight.data().asnumpy()[24:]).max() <= 1 / np.sqrt(24 * 9)  # airbench94's fan-in
    assert np.abs(y[:, 24:]).mean() > 0.05  # the other channels start random
    z = mx.nd.random.normal(shape=(2, WIDTHS[0], 8, 8))
    np.testing.assert_allclose(group.conv2(z).asnumpy(), z.asnumpy(), rtol=1e-6, atol=1e-6)


def test_every_build_orders_its_parameters_alike_for_the_trainer():
    # gluon.Trainer sorts a ParameterDict by name, and a checkpoint's optimizer state follows that
    # order: a second build in the same process must give each index the same parameter.
    def trainer_order():
        net = Airbench94(10)
        return [(name.split("_", 1)[1], net.collect_params()[name].shape) for name in sorted(net.collect_params())]

    first = trainer_order()
    gluon.nn.Conv2D(8, 3)  # another block moves Gluon's global name counters
    assert trainer_order() == first
    assert first[:2] == [("batchnorm0_beta", (64,)), ("batchnorm0_gamma", (64,))]
