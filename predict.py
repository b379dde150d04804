#!/usr/bin/env python3
"""Classify images with a trained network: an export (--export PATH), its ONNX file (PATH.onnx,
run by ONNX Runtime) or a checkpoint (PREFIX-NNNN).

    python predict.py exported/spec cat.png car.jpg        # class and probability per image
    python predict.py exported/spec.onnx cat.png car.jpg   # the same, in ONNX Runtime
    python predict.py ckpt/spec-0005 some_batch.bin        # a CIFAR-10 binary batch file
    python predict.py exported/spec --data-dir ~/.mxnet/datasets/cifar10 --out results/preds

The flags are in commands/predict.py; this file only makes the process ready before MXNet loads
(common/runtime.py).
"""
import sys

from common import runtime

if __name__ == "__main__":
    sys.exit(runtime.start("commands.predict"))
