"""The spec'd network: structure, initialisation, batch-statistics BatchNorm, exact forward pass."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from helpers import np_spec_net, weights_in_spec_order
from models import ConvBlock, ResidualBlock, Scale, SpecResNet, unprefixed


def make_net(num_classes=10, seed=0, hybridize=False, fused=False, widened=False):
    mx.random.seed(seed)
    net = SpecResNet(num_classes, fuse_bn_relu=fused, widen_first_stage=widened)
    net.initialize()
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net


def random_images(n=6, seed=1):
    # Off-centre and scaled, so a missing normalisation would show.
    return mx.nd.array(np.random.RandomState(seed).normal(0.7, 2.0, size=(n, 3, 32, 32)))


# ----------------------------------------------------------------------------------------------
# A plain numpy implementation of the spec'd network (models/spec_resnet.py's docstring), in float64

# ----------------------------------------------------------------------------------------------

def test_structure_follows_the_spec():
    net = make_net()
    kinds = [type(b) for b in net.features]
    assert kinds == [ConvBlock, ResidualBlock, gluon.nn.MaxPool2D, ResidualBlock,
                     gluon.nn.MaxPool2D, ResidualBlock, gluon.nn.GlobalMaxPool2D]
    assert isinstance(net.output[1], Scale) and net.output[1].alpha == 0.125
    shapes = []
    x = random_images(2)
    for block in net.features:
        x = block(x)
        shapes.append(x.shape[1:])
    assert shapes == [(16, 32, 32), (32, 32, 32), (32, 16, 16), (64, 16, 16),
                      (64, 8, 8), (128, 8, 8), (128, 1, 1)]


@pytest.mark.parametrize("num_classes", [2, 10])
def test_output_shape(num_classes):
    out = make_net(num_classes, hybridize=True)(random_images(5))
    assert out.shape == (5, num_classes)


def test_trainable_parameters_are_exactly_the_weights_with_fan_in_uniform_init():
    net = make_net(seed=3)
    trainable = {name: p for name, p in net.collect_params().items() if p.grad_req != "null"}
    # 4 conv3x3 + 3 conv1x1 skips + 1 dense; no bias, no BN scale or shift.
    assert len(trainable) == 8 and all(name.endswith("weight") for name in trainable)
    for name, p in trainable.items():
        w = p.data().asnumpy()
        bound = np.sqrt(1.0 / np.prod(w.shape[1:]))  # fan_in = cin * kh * kw, or in_units
        assert np.abs(w).max() <= bound, name
        assert np.abs(w).max() > 0.9 * bound, name  # really spread over the whole interval
        if w.size >= 256:
            assert abs(w.mean()) < 0.1 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound, name
    total = sum(p.data().size for p in trainable.values())
    assert total == 16 * 27 + 32 * 144 + 64 * 288 + 128 * 576 + 32 * 16 + 64 * 32 + 128 * 64 + 10 * 128


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_output_is_normalised_per_channel_in_train_and_eval(training):
    net = make_net()  # imperative, so the hook sees each BatchNorm
    seen = []
    for bn in [net.features[0].bn, net.features[3].body.bn, net.features[5].body.bn]:
        bn.register_forward_hook(lambda block, inputs, output: seen.append(output.asnumpy()))
    x = random_images(8)
    if training:
        with autograd.record():
            net(x)
    else:
        net(x)  # predict mode, as a user would call it
    assert len(seen) == 3
    for y in seen:
        np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
        np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)


VARIANTS = [(False, False), (True, False), (False, True), (True, True)]  # (hybridize, fused)
VARIANT_IDS = ["imperative", "hybridized", "imperative-fused", "hybridized-fused"]


@pytest.mark.parametrize("hybridize, fused", VARIANTS, ids=VARIANT_IDS)
def test_forward_pass_equals_numpy_implementation_of_the_spec(hybridize, fused):
    net = make_net(num_classes=3, seed=5, hybridize=hybridize, fused=fused)
    x = random_images(6, seed=2)
    expected = np_spec_net(x.asnumpy().astype(np.float64), weights_in_spec_order(net))
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-3, atol=1e-5)
    with autograd.record():
        in_training = net(x)
    np.testing.assert_allclose(in_training.asnumpy(), expected, rtol=1e-3, atol=1e-5)


def outputs_and_gradients(net, x, y):
    with autograd.record():
        out = net(x)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(out, y)
    loss.backward()
    return out.asnumpy(), [p.grad().asnumpy() for p in net.collect_params().values()
                           if p.grad_req != "null"]


def test_hybridized_and_fused_equal_imperative_forward_and_gradients():
    x, y = random_images(8, seed=4), mx.nd.array([0, 1, 2, 3, 4, 5, 6, 7])
    (out_a, grads_a), *others = [outputs_and_gradients(make_net(seed=7, hybridize=h, fused=f), x, y)
                                 for h, f in VARIANTS]
    for out_b, grads_b in others:
        np.testing.assert_allclose(out_a, out_b, rtol=1e-5, atol=1e-6)
        for ga, gb in zip(grads_a, grads_b):
            np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-6)


def test_switching_fusion_on_a_hybridized_net_rebuilds_its_graph():
    net = make_net(seed=3, hybridize=True, fused=True)
    x, y = random_images(8, seed=5), mx.nd.array([0, 1] * 4)
    fused = outputs_and_gradients(net, x, y)
    assert "BatchNormWithReLU" in net._cached_graph[1].tojson()
    net.fuse_bn_relu(False)
    unfused = outputs_and_gradients(net, x, y)
    graph = net._cached_graph[1].tojson()
    assert "BatchNormWithReLU" not in graph and '"Activation"' in graph
    np.testing.assert_allclose(fused[0], unfused[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
def test_the_widened_first_stage_computes_the_same_numbers_with_the_same_parameters(hybridize):
    x, y = random_images(8, seed=6), mx.nd.array([0, 1, 2, 3, 4, 5, 6, 7])
    plain = make_net(seed=9, hybridize=hybridize, fused=True)
    widened = make_net(seed=9, hybridize=hybridize, fused=True, widened=True)
    shapes = lambda net: sorted((unprefixed(name), p.shape) for name, p in net.collect_params().items())  # noqa: E731
    assert shapes(widened) == shapes(plain)  # checkpoints and exports are the same either way
    (out_a, grads_a), (out_b, grads_b) = outputs_and_gradients(plain, x, y), outputs_and_gradients(widened, x, y)
    # Every term the widening adds is an exact 0.
    np.testing.assert_allclose(out_b, out_a, rtol=1e-6, atol=1e-7)
    for ga, gb in zip(grads_a, grads_b):
        np.testing.assert_allclose(gb, ga, rtol=1e-6, atol=1e-7)
    if hybridize:  # one convolution more: the one that hands the first block's 16 channels on as 32
        graphs = [net._cached_graph[1].tojson() for net in (plain, widened)]
        assert [g.count('"op": "Convolution"') for g in graphs] == [7, 8]


def test_the_portable_form_is_traced_without_the_cpu_forms_and_they_come_back():
    net = make_net(seed=3, hybridize=True, fused=True, widened=True)
    x = random_images(4, seed=5)
    with net.portable():
        net(x)
        graph = net._cached_graph[1].tojson()
    assert "BatchNormWithReLU" not in graph and "diag" not in graph
    net(x)
    graph = net._cached_graph[1].tojson()
    assert "BatchNormWithReLU" in graph and "diag" in graph and net.widened_first_stage and net.fused_bn_relu


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_no_statistic_of_any_data_is_stored(fused):
    net = make_net(num_classes=2, hybridize=True, fused=fused)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for step in range(3):
        with autograd.record():
            loss = loss_fn(net(random_images(8, seed=step)), mx.nd.array([0, 1] * 4))
        loss.backward()
        trainer.step(8)
    net(random_images(8, seed=99))  # "test" data
    mx.nd.waitall()
    stored = {name: p.data().asnumpy() for name, p in net.collect_params().items() if p.grad_req == "null"}
    assert stored  # the BatchNorm layers' gamma, beta, running mean and var
    for name, value in stored.items():
        expected = 1.0 if name.endswith(("gamma", "running_var")) else 0.0
        assert np.all(value == expected), name


def test_predictions_depend_on_the_batch_as_the_spec_says():
    net = make_net(hybridize=True)
    x = random_images(8)
    alone = net(x[:4]).asnumpy()
    together = net(x).asnumpy()[:4]
    assert not np.allclose(alone, together, atol=1e-4)
    np.testing.assert_allclose(net(x).asnumpy(), net(x).asnumpy())  # yet deterministic
