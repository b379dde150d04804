"""Write the export of a checkpoint, as train_cifar10.py --export writes it after training.

export_model.py's flags and wiring. For the spec'd network the export normalises with the
training set's population statistics: those kept with the checkpoint, or, for a checkpoint that
has none (one saved before training ended), measured now in one pass over the checkpoint's
training set and then kept with it. --batch-statistics exports the spec's form instead. The data
is the one the checkpoint was trained on, found where it was trained (--data-dir where it moved).
"""
import argparse
import sys

import mxnet as mx

import models
from commands.cli import report_export, say
from data import DataError
from training import checkpoint, population, saved_model
from training.loop import evaluate

REMEDY = "export another checkpoint"
CHECKPOINT_ONLY = ("format", "epoch", "num_update", "rng", "files")  # what an export's meta leaves out


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint PREFIX-NNNN (--model-prefix PREFIX)")
    parser.add_argument("export", metavar="PATH", help="where to write PATH-symbol.json, "
                        "PATH-0000.params, PATH-meta.json and PATH.onnx")
    parser.add_argument("--data-dir", default=None,
                        help="where the checkpoint's training data is now (None: where it was "
                             "trained); needed only to measure population statistics")
    parser.add_argument("--batch-statistics", action="store_true",
                        help="export the spec'd network as the spec defines it, normalising with "
                             "each batch's statistics (its predictions depend on the batch)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")
    return parser


def population_form(args, net, record, prefix, ctx):
    """(the population form of the checkpoint's spec'd network, the test accuracy both ways)."""
    dataset = saved_model.model_dataset(record, args.data_dir, progress=not args.quiet)
    statistics = checkpoint.population_statistics(prefix, record)
    if statistics is None:
        statistics, seconds = population.measure(net, dataset.train_x, record["config"]["batch_size"],
                                                 ctx, show_progress=not args.quiet)
        checkpoint.add_population_statistics(prefix, record["epoch"], statistics)
        say(args, "population statistics: one pass over %d training images in %.1f s, kept with "
            "%s-%04d" % (dataset.train_x.shape[0], seconds, prefix, record["epoch"]))
    deployed = population.deployment_network(net, statistics, record["num_classes"], ctx)
    batch_size = record["config"]["batch_size"]
    spec_accuracy = evaluate(net, dataset.test_x, dataset.test_y, [ctx], batch_size)["test_acc"]
    return deployed, population.accuracies(deployed, dataset.test_x, dataset.test_y, ctx, batch_size,
                                           spec_accuracy)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = mx.cpu()
    try:
        found = saved_model.identify(args.checkpoint)
        if found.kind != "checkpoint":
            parser.error("%s is an export already; give a checkpoint PREFIX-NNNN" % args.checkpoint)
        record = checkpoint.read(found.prefix, found.epoch, REMEDY)
        spec = models.uses_batch_statistics(record["model"])
        if args.batch_statistics and not spec:
            parser.error("--batch-statistics would have no effect: %s normalises with its running "
                         "statistics" % record["model"])
        net = saved_model.checkpoint_network(found.prefix, record, ctx)
        meta = {k: v for k, v in record.items() if k not in CHECKPOINT_ONLY}
        if spec and not args.batch_statistics:
            net, results = population_form(args, net, record, found.prefix, ctx)
            meta.update(results)
        size = record["input_size"]
        sample = mx.nd.zeros((2, 3, size, size), ctx=ctx)
        written, no_onnx = saved_model.export(net, args.export, meta, sample)
    except (checkpoint.CheckpointError, saved_model.ModelError, DataError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    report_export(args, written, no_onnx)
    return 0
