"""An export in MXNet and its ONNX file in ONNX Runtime, side by side on one test set.

    python -m tools.compare_runtimes exported/spec --data-dir DIR [--batch-size 128]

Both runtimes get the same normalised test images in the same batches (the test set as training
built it: data.model_test_set). Prints one JSON line: the largest logit difference, how
many predictions differ, each runtime's accuracy, and each runtime's inference images/s (the
fastest of three passes after a warm-up).
"""
import json
import sys
import time

import numpy as np

from common import runtime
from common.cli import ArgumentParser, command

PASSES = 4  # over the whole test set: the first warms up (graph building, memory planning)


def logits_and_speed(model, images, batch_size):
    """(logits of all images in batches of batch_size, images/s of the fastest pass after the
    first: the least disturbed by whatever else the machine does)."""
    seconds = []
    for _ in range(PASSES):
        start = time.perf_counter()
        logits = np.concatenate([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
        seconds.append(time.perf_counter() - start)
    return logits, len(images) / min(seconds[1:])


def compare(export_path, data_dir, batch_size):
    from data import model_test_set  # load MXNet: the tool runs through runtime.start
    from training import saved_model

    mxnet_model, meta = saved_model.load(export_path)
    onnx_model, _ = saved_model.load(export_path + ".onnx")
    images, labels = model_test_set(meta, data_dir)
    mx_logits, mx_speed = logits_and_speed(mxnet_model, images, batch_size)
    ort_logits, ort_speed = logits_and_speed(onnx_model, images, batch_size)
    mx_pred, ort_pred = mx_logits.argmax(axis=1), ort_logits.argmax(axis=1)
    return {"model": meta["model"], "test_images": len(labels), "batch_size": batch_size,
            "max_logit_diff": float(np.abs(mx_logits - ort_logits).max()),
            "predictions_differing": int((mx_pred != ort_pred).sum()),
            "mxnet_test_acc": float((mx_pred == labels).mean()),
            "onnx_test_acc": float((ort_pred == labels).mean()),
            "mxnet_images_per_sec": round(mx_speed, 1), "onnx_images_per_sec": round(ort_speed, 1)}


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("export", help="an export PATH written by --export (PATH-meta.json, PATH.onnx)")
    parser.add_argument("--data-dir", required=True, help="the CIFAR folder whose test set is used")
    parser.add_argument("--batch-size", type=int, default=128, help="images per inference call")
    return parser


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    print(json.dumps(compare(args.export, args.data_dir, args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(runtime.start(main))
