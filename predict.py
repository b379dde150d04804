#!/usr/bin/env python3
"""Classify images with a trained network: an export (--export PATH), its ONNX file (PATH.onnx,
run by ONNX Runtime) or a checkpoint (PREFIX-NNNN).

    python predict.py exported/spec cat.png car.jpg        # class and probability per image
    python predict.py exported/spec.onnx cat.png car.jpg   # the same, in ONNX Runtime
    python predict.py ckpt/spec-0005 some_batch.bin        # a CIFAR-10 binary batch file
    python predict.py exported/spec --data-dir ~/.mxnet/datasets/cifar10 --out results/preds

With --data-dir, the test set of the model's classes is predicted, one label per line is written
to --out, and the accuracy is printed.

The spec's network normalises with the statistics of the batch it is given, so a prediction
depends on the other images in its batch: predict many images together (--batch-size, default
128, as in training) for the accuracy measured in training.
"""
import training  # noqa: F401  (first: checks Python, gives MXNet every CPU core before it loads)

import argparse
import json
import os
import sys
import warnings

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from data import (LAYOUTS, DataError, class_names, eval_order, extracted_folder, load,
                  network_input, read_image, read_records, select_classes)
import models
from training import checkpoint, onnx_export


class MXNetNet:
    """A network in MXNet: call it on normalised float32 NCHW images (numpy) for their logits.

    batch_statistics (the spec'd network): in train mode, since the graph's BatchNorm must use
    batch statistics (in predict mode an exported graph would use its stored 0/1 moving
    statistics and not normalise at all). Nothing is recorded, so nothing in the model changes.
    Otherwise (the other networks) in predict mode, with their running statistics.
    """

    def __init__(self, net, ctx, batch_statistics):
        self.net, self.ctx, self.batch_statistics = net, ctx, batch_statistics

    def __call__(self, images):
        with (autograd.train_mode() if self.batch_statistics else autograd.predict_mode()):
            return self.net(mx.nd.array(images, ctx=self.ctx)).asnumpy()


def load_model(path, ctx):
    """(a callable from images to logits, meta) for an ONNX file (PATH.onnx, run by ONNX Runtime),
    an MXNet export (PATH-meta.json) or a checkpoint (PREFIX-NNNN.json)."""
    kind, prefix, epoch = checkpoint.locate(path)
    if kind in ("onnx", "export"):
        with open(prefix + "-meta.json") as f:
            meta = json.load(f)
        if kind == "onnx":
            return onnx_export.OnnxNet(path), meta
        with warnings.catch_warnings():  # "Cannot decide type ... data": it is float32, given at call
            warnings.filterwarnings("ignore", message="Cannot decide type")
            net = gluon.nn.SymbolBlock.imports(path + "-symbol.json", ["data"], path + "-0000.params",
                                               ctx=ctx)
        return MXNetNet(net, ctx, meta["batch_statistics"]), meta
    meta = checkpoint.read(prefix, epoch)
    meta["batch_statistics"] = models.uses_batch_statistics(meta["model"])
    net = models.build(meta["model"], meta["num_classes"], [ctx])
    net.load_parameters(checkpoint.paths(prefix, epoch)["params"], ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return MXNetNet(net, ctx, meta["batch_statistics"]), meta


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


def model_input(images, meta):
    """uint8 images as the model saw its test set in training: normalised with the statistics
    it was trained with (not those of the data at hand), centrally cropped to its input size."""
    return network_input(images, np.array(meta["mean"], dtype=np.float32),
                         np.array(meta["std"], dtype=np.float32), meta.get("input_size", 32))


def test_set(meta, data_dir):
    """(network input, labels) of the test set of the model's classes in data_dir, in the order
    training evaluated it (the batches, and so the batch statistics, are the same)."""
    config = meta.get("config") or {}
    layout = LAYOUTS.get(config.get("dataset", "cifar10"))
    if layout is None:
        raise DataError("this model was trained on %s, not CIFAR-10 or CIFAR-100: --data-dir "
                        "predicts their test sets; give image files instead" % config["dataset"])
    label = "coarse" if config.get("coarse_labels") else "fine"
    names = class_names(layout, extracted_folder(layout, data_dir, progress=False), label)
    if not set(meta["class_names"]) <= set(names):
        raise DataError("this model's classes (%s) are not among those of %s in %s"
                        % (", ".join(meta["class_names"]), layout.title, data_dir))
    classes = [names.index(name) for name in meta["class_names"]]
    _, _, test_x, test_y = load(layout, data_dir, progress=False, label=label)
    test_x, test_y = select_classes(test_x, test_y, classes)
    order = eval_order(len(test_y))
    return model_input(test_x[order], meta), test_y[order]


def predict_test_set(model, meta, args):
    """Predicts the test set, writes one label per line to --out and prints the accuracy."""
    images, labels = test_set(meta, args.data_dir)
    predicted = probabilities(model, images, args.batch_size).argmax(axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("".join("%d\n" % p for p in predicted))
    accuracy = float((predicted == labels).mean())
    print(json.dumps({"test_images": len(predicted), "test_acc": accuracy,
                      "batch_size": args.batch_size, "predictions": args.out}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help="an export PATH (PATH-meta.json), its ONNX file PATH.onnx, "
                        "or a checkpoint PREFIX-NNNN")
    parser.add_argument("inputs", nargs="*", help="image files (PNG, JPEG, ...) or CIFAR-10 .bin files")
    parser.add_argument("--data-dir", help="predict the test set of this CIFAR-10 (or, for a model "
                        "trained on it, CIFAR-100) folder instead")
    parser.add_argument("--out", default=os.path.join("results", "preds"),
                        help="with --data-dir: where to write one predicted label per line")
    parser.add_argument("--batch-size", type=int, default=128, help="images normalised together")
    parser.add_argument("--num-gpus", type=int, default=0, help="predict on GPU 0 (1) or the CPU (0)")
    args = parser.parse_args(argv)
    if not args.inputs and not args.data_dir:
        parser.error("give image files, or --data-dir")
    if args.num_gpus and args.model.endswith(".onnx"):
        parser.error("argument --num-gpus: an ONNX file runs in ONNX Runtime's CPU build here; "
                     "give the MXNet export (without .onnx) to predict on a GPU")
    ctx = mx.gpu(0) if args.num_gpus else mx.cpu()
    try:
        model, meta = load_model(args.model, ctx)
        if args.data_dir:
            predict_test_set(model, meta, args)
            return 0
        images, names = read_images(args.inputs)
        probs = probabilities(model, model_input(images, meta), args.batch_size)
    except (checkpoint.CheckpointError, onnx_export.OnnxError, DataError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    for name, p in zip(names, probs):
        label = int(p.argmax())
        print(json.dumps({"input": name, "class": meta["class_names"][label],
                          "probability": round(float(p[label]), 6)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
