#!/usr/bin/env python3
"""Train the spec'd simplified ResNet on CIFAR-10 with MXNet Gluon.

    python train_cifar10.py --num-gpus 1 --epochs 5     # on GPU 0
    python train_cifar10.py --num-gpus 0 --classes 0,1  # CPU, the spec's 2-class task
    python train_cifar10.py --help                      # every flag

Prints one JSON line per epoch on stdout; messages and the progress bar go to stderr. The flags
and the wiring are in commands/train.py; this file only makes the process ready before MXNet
loads (common/runtime.py).
"""
import sys

from common import runtime

if __name__ == "__main__":
    sys.exit(runtime.start("commands.train"))
