"""airbench94's hyperparameters in MXNet's terms (training/recipes/fast94.py): MXNet's Trainer with the
recipe's settings makes the updates PyTorch's SGD makes with airbench94's, step for step."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from training import distributed
from training.config import RunConfig
from training.recipes.fast94 import RECIPE, Hyperparameters, bias_multipliers  # registers NesterovSGD with MXNet
from training.schedules import PiecewiseLinear
from training.trainer import run_batches


def torch_sgd_nesterov(p, grad_sum, buf, lr, wd, momentum):
    """One step of PyTorch's SGD(nesterov=True) on the summed gradient (airbench94's optimizer)."""
    d = grad_sum + wd * p
    buf = momentum * buf + d
    return p - lr * (d + momentum * buf), buf


def test_the_recipes_numbers():
    recipe = Hyperparameters()
    assert recipe.kilostep == pytest.approx(1024 * (1 + 1 / 0.15))
    lr, wd = recipe.mxnet_settings()
    assert lr == pytest.approx(11.5 / recipe.kilostep * 1024)  # about 1.5 on the batch mean
    assert wd == pytest.approx(0.0153 / 11.5)
    config = RunConfig(recipe="fast94", **RECIPE.defaults())  # the count the run's schedule and lookahead use
    assert run_batches(config, 50000, [mx.cpu()], distributed.connect("device", {})) == 476  # 48 whole
    # batches an epoch, 9.9 epochs: ceil(475.2)


def test_mxnet_makes_airbench94s_updates():
    recipe = Hyperparameters(batch_size=8)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(4, in_units=6, use_bias=False), gluon.nn.BatchNorm(in_channels=4),
            gluon.nn.Dense(3, in_units=4, use_bias=False))
    mx.random.seed(0)
    net.initialize(mx.init.Uniform(0.5))
    net[1].gamma.grad_req = "null"  # airbench94's fixed scale
    bias_multipliers(net, recipe.bias_scaler)
    total = 20
    lr, wd = recipe.mxnet_settings()
    trainer = gluon.Trainer(net.collect_params(), "nesterovsgd",
                            {"learning_rate": lr, "momentum": recipe.momentum, "wd": wd,
                             "lr_scheduler": PiecewiseLinear(total, recipe.schedule, base_lr=lr)})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.RandomState(1)
    trained = {name: p for name, p in net.collect_params().items() if p.grad_req != "null"}
    values = {name: p.data().asnumpy().astype(np.float64) for name, p in trained.items()}
    buffers = {name: np.zeros_like(v) for name, v in values.items()}
    lr_group = recipe.lr / recipe.kilostep
    for step in range(8):  # the rate rises over 4 updates, then falls: it changes at every one
        x, y = mx.nd.array(rng.normal(size=(8, 6))), mx.nd.array(rng.randint(0, 3, 8))
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        grads = {name: p.grad().asnumpy().astype(np.float64) for name, p in trained.items()}  # of the summed loss
        trainer.step(8)
        factor = PiecewiseLinear(total, recipe.schedule)(step + 1)
        for name in trained:
            group_lr = lr_group * (recipe.bias_scaler if name.endswith("beta") else 1)
            group_wd = recipe.weight_decay * 8 / recipe.kilostep / group_lr
            values[name], buffers[name] = torch_sgd_nesterov(values[name], grads[name], buffers[name],
                                                             group_lr * factor, group_wd, recipe.momentum)
            # float32 against float64: the shifts' rate is 64 x 1.5, and 8 updates feed back the rounding
            np.testing.assert_allclose(trained[name].data().asnumpy(), values[name], rtol=5e-5, atol=1e-6,
                                       err_msg="%s after step %d" % (name, step + 1))
    assert any(name.endswith("beta") for name in trained)
