"""Classify images with a trained network: an export (--export PATH), its ONNX file (PATH.onnx,
run by ONNX Runtime) or a checkpoint (PREFIX-NNNN).

predict.py's flags and output: with image or .bin files, one JSON line per image (class and
probability); with --data-dir, the test set of the model's classes is predicted, one label per
line is written to --out and the accuracy is printed.

An export of the spec'd network normalises with the training set's population statistics and
predicts each image on its own. Its batch-statistics form (a checkpoint, or an export made with
--export-batch-statistics) normalises with the statistics of the batch it is given, so a
prediction depends on the other images in its batch: predict many images together
(--batch-size, default 128, as in training) for the accuracy measured in training.

A model trained with test-time augmentation (--recipe fast94, --tta-level) is predicted with it,
as its training measured its tta_test_acc: each image's logits averaged over its mirror image
and one-pixel translations (training/tta.py); --no-tta predicts from the image alone.
"""
import json
import os
import sys

import numpy as np

from common.cli import ArgumentParser, command, non_negative_int, positive_int
from data import model_input, model_test_set, read_image, read_records
from training import saved_model
from training.devices import contexts
from training.tta import TTAModel


def probabilities(model, images, batch_size):
    """Softmax of the model's logits for normalised float32 NCHW images, batch by batch (the
    spec'd network normalises each batch with its own statistics)."""
    logits = np.concatenate([model(images[start:start + batch_size])
                             for start in range(0, len(images), batch_size)])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def read_images(paths):
    """(uint8 NCHW images, a name for each) from image files (any size, decoded and resized to
    32x32 as training's image folders are) or CIFAR-10 .bin files (read as training reads them)."""
    images, names = [], []
    for path in paths:
        if path.endswith(".bin"):
            records, _ = read_records(path)
            images.extend(records)
            names.extend("%s:%d" % (path, i) for i in range(len(records)))
        else:
            images.append(read_image(path))
            names.append(path)
    return np.stack(images), names


def predict_test_set(model, meta, args):
    """Predicts the test set, writes one label per line to --out and prints the accuracy."""
    images, labels = model_test_set(meta, args.data_dir)
    predicted = probabilities(model, images, args.batch_size).argmax(axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("".join("%d\n" % p for p in predicted))
    accuracy = float((predicted == labels).mean())
    print(json.dumps({"test_images": len(predicted), "test_acc": accuracy, "tta_level": model.level,
                      "batch_size": args.batch_size, "predictions": args.out}))


def batch_warning(count, batch_size):
    """The warning for a batch-statistics model asked about fewer images than a batch."""
    return ("warning: this model normalises with the statistics of the batch it is given, so its "
            "answers for these %d image(s) depend on which images are predicted together (batches "
            "of %d reproduce training's evaluation); for answers that do not, export it with "
            "population statistics: train_cifar10.py --export PATH, or export_model.py CHECKPOINT "
            "PATH" % (count, batch_size))


def predict_images(model, meta, args):
    """One JSON line per image: its class and probability."""
    images, names = read_images(args.inputs)
    if meta["batch_statistics"] and len(images) < args.batch_size:
        print(batch_warning(len(images), args.batch_size), file=sys.stderr, flush=True)
    probs = probabilities(model, model_input(images, meta), args.batch_size)
    for name, p in zip(names, probs):
        label = int(p.argmax())
        print(json.dumps({"input": name, "class": meta["class_names"][label],
                          "probability": round(float(p[label]), 6)}))


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an export PATH (PATH-meta.json), its ONNX file PATH.onnx, "
                        "or a checkpoint PREFIX-NNNN")
    parser.add_argument("inputs", nargs="*", help="image files (PNG, JPEG, ...) or CIFAR-10 .bin files")
    parser.add_argument("--data-dir", help="predict the test set of this CIFAR-10 (or, for a model "
                        "trained on it, CIFAR-100) folder instead")
    parser.add_argument("--out", default=os.path.join("results", "preds"),
                        help="with --data-dir: where to write one predicted label per line")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="images normalised together")
    parser.add_argument("--num-gpus", type=non_negative_int, default=0,
                        help="predict on GPU 0 (1) or the CPU (0)")
    parser.add_argument("--no-tta", action="store_true",
                        help="for a model trained with test-time augmentation (--recipe fast94): "
                             "predict from each image alone, without its mirror image and translations")
    return parser


@command
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.inputs and not args.data_dir:
        parser.error("give image files, or --data-dir")
    if args.num_gpus and args.model.endswith(".onnx"):
        parser.error("argument --num-gpus: an ONNX file runs in the CPU build of ONNX Runtime "
                     "(requirements-onnx.txt); give the MXNet export (without .onnx) to predict "
                     "on a GPU")
    try:
        ctx = contexts(min(args.num_gpus, 1))[0]
    except ValueError as e:
        parser.error(str(e))
    model, meta = saved_model.load(args.model, ctx)
    model = TTAModel(model, 0 if args.no_tta else meta["tta_level"])
    if args.data_dir:
        predict_test_set(model, meta, args)
    else:
        predict_images(model, meta, args)
    return 0
