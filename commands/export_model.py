"""Write the export of a checkpoint, as train_cifar10.py --export writes it after training.

export_model.py's flags and wiring. For the spec'd network the export normalises with the
training set's population statistics: those kept with the checkpoint, or, for a checkpoint that
has none (one saved before training ended), measured now in one pass over the checkpoint's
training set and then kept with it (training/population.form, as after training).
--batch-statistics exports the spec's form instead. The data is the one the checkpoint was
trained on, found where it was trained (--data-dir where it moved).
"""
import mxnet as mx

import models
from common.cli import ArgumentParser, command, report_export, say
from data import model_dataset
from training import checkpoint, population, saved_model
from training.export import export

REMEDY = "export another checkpoint"
CHECKPOINT_ONLY = ("format", "epoch", "num_update", "rng", "files")  # what an export's meta leaves out


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint PREFIX-NNNN (--model-prefix PREFIX)")
    parser.add_argument("export", metavar="PATH", help="where to write PATH-symbol.json, "
                        "PATH-0000.params, PATH-meta.json and PATH.onnx")
    parser.add_argument("--data-dir", default=None,
                        help="where the checkpoint's training data is now (None: where it was "
                             "trained); the spec'd network's export reads it for its population "
                             "statistics (unless the checkpoint keeps them) and its test accuracies")
    parser.add_argument("--batch-statistics", action="store_true",
                        help="export the spec'd network as the spec defines it, normalising with "
                             "each batch's statistics (its predictions depend on the batch)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")
    return parser


@command
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = mx.cpu()
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
        dataset = model_dataset(record, args.data_dir, progress=not args.quiet)
        formed = population.form(
            net, dataset, record["config"]["batch_size"], ctx,
            statistics=checkpoint.population_statistics(found.prefix, record),
            keep_with=(found.prefix, record["epoch"]), show_progress=not args.quiet)
        say(args, formed.summary())
        net = formed.net
        meta.update(formed.results)
    size = record["input_size"]
    written, no_onnx = export(net, args.export, meta, mx.nd.zeros((2, 3, size, size), ctx=ctx))
    report_export(args, written, no_onnx)
    return 0
