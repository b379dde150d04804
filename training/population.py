"""Population statistics of the spec'd network, for the form of it that predicts every image on
its own (models.SpecResNet(population_statistics=True)).

The statistics of a BatchNorm are the per-channel mean and biased variance of its input over the
training set, measured in one deterministic pass: the training images in their stored order, in
batches of the training batch size, every BatchNorm normalising with the batch's own statistics
as in training (so each one measures the inputs training gave it); nothing is recorded and no
weight changes. Each is the average of the batch means and of the batch variances, every batch
weighted by its images, as torch.optim.swa_utils.update_bn estimates them.

They are kept as {parameter name without the instance prefix: values} for the BatchNorms'
running_mean and running_var, the parameters the population form normalises with.
"""
import time
from dataclasses import dataclass

import mxnet as mx
import numpy as np

import models
from common import interrupts
from common.progress import progress_bar
from data import batches

from . import checkpoint
from .loop import evaluate


def measure(net, x, batch_size, ctx, show_progress=False):
    """(statistics, seconds): the population statistics of the spec'd network `net` (its
    batch-statistics form, as trained) over the images x (an NDArray), computed on ctx."""
    start = time.time()
    batch_norms = net.batch_norms()
    sums = {bn: (0, 0) for bn in batch_norms}
    net.tap_batch_norm_inputs(True)  # the hybridized graph hands out what each BatchNorm receives
    try:
        with progress_bar(x.shape[0], "population statistics", show_progress, unit="img",
                          leave=False) as bar:
            for data, _ in batches(x, x, batch_size):
                _, *inputs = net(data.as_in_context(ctx))
                for bn, values in zip(batch_norms, inputs):
                    sums[bn] = _add_batch(sums[bn], values)
                bar.update(data.shape[0])
                interrupts.reach("population statistics")
    finally:
        net.tap_batch_norm_inputs(False)
    statistics = {}
    for bn, (mean_sum, var_sum) in sums.items():
        for param, total in ((bn.running_mean, mean_sum), (bn.running_var, var_sum)):
            statistics[models.unprefixed(param.name)] = (total / x.shape[0]).astype(np.float32)
    return statistics, time.time() - start


def _add_batch(sums, values):
    """sums of (images x mean, images x biased variance) per channel, plus one batch's values.
    In numpy: MXNet's CPU reductions over three axes take 3-5 times as long as copying the batch
    out and reducing it there (pairwise sums, 3e-7 relative); batches add in float64. Under --amp
    a BatchNorm may receive float16 or bfloat16 (numpy has no bfloat16)."""
    data = values.astype("float32", copy=False).asnumpy()
    n = data.shape[0]
    return (sums[0] + n * data.mean(axis=(0, 2, 3)).astype(np.float64),
            sums[1] + n * data.var(axis=(0, 2, 3)).astype(np.float64))


def deployment_network(net, statistics, num_classes, ctx):
    """The population form of the trained spec'd network `net`: the same weights, its
    BatchNorms normalising with `statistics`; hybridized, on ctx."""
    deployed = models.build(models.SPEC_RESNET, num_classes, population_statistics=True)
    deployed.initialize(ctx=ctx)
    values = {models.unprefixed(p.name): p.data(ctx) for p in net.collect_params().values()}
    values.update({name: mx.nd.array(v, ctx=ctx) for name, v in statistics.items()})
    for param in deployed.collect_params().values():
        param.set_data(values[models.unprefixed(param.name)])
    deployed.hybridize(static_alloc=True, static_shape=True)
    return deployed


def accuracies(deployed, x, y, ctx, batch_size, batch_statistics_accuracy):
    """The test accuracy both ways, under the names exports, status.json and Comet keep them by:
    the trained network's with batch statistics (as measured in batches of batch_size) and that of
    its population form `deployed` on (x, y), measured here on ctx (batches change nothing)."""
    return {"test_acc_batch_statistics": batch_statistics_accuracy,
            "test_acc_batch_statistics_batch_size": batch_size,
            "test_acc_population_statistics": evaluate(deployed, x, y, [ctx], batch_size)[0]["test_acc"]}


@dataclass
class Formed:
    """What form() made: the population form, its accuracies, and where its statistics came from."""
    net: object  # the population form (HybridBlock)
    results: dict  # test_acc_population_statistics, test_acc_batch_statistics
    source: str  # how the statistics were had
    batch_size: int  # of the batch-statistics evaluation

    def summary(self):
        """The line a command prints of it."""
        return ("population statistics: %s; test accuracy %.4f with them, %.4f with batch statistics "
                "(batches of %d)" % (self.source, self.results["test_acc_population_statistics"],
                                     self.results["test_acc_batch_statistics"], self.batch_size))


def form(net, dataset, batch_size, ctx, statistics=None, keep_with=None, test_acc=None, show_progress=False):
    """The one way to the population form of a trained spec'd network, after training and in
    export_model.py: a Formed.

    statistics: those kept with the network's checkpoint, if any; else they are measured in one
    pass over dataset's training images and, with keep_with=(prefix, epoch), kept with that
    checkpoint. test_acc: the batch-statistics accuracy already measured (a run's last
    evaluation); None: measured now, in batches of batch_size.
    """
    if statistics is None:
        statistics, seconds = measure(net, dataset.train_x, batch_size, ctx, show_progress)
        if keep_with is not None:
            checkpoint.add_population_statistics(*keep_with, statistics)
        source = "one pass over %d training images in %.1f s" % (dataset.train_x.shape[0], seconds)
    else:
        source = "kept with the checkpoint"
    if test_acc is None:
        test_acc = evaluate(net, dataset.test_x, dataset.test_y, [ctx], batch_size)[0]["test_acc"]
    deployed = deployment_network(net, statistics, dataset.num_classes, ctx)
    results = accuracies(deployed, dataset.test_x, dataset.test_y, ctx, batch_size, test_acc)
    return Formed(deployed, results, source, batch_size)
