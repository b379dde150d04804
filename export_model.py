#!/usr/bin/env python3
"""Write the export of a checkpoint (as train_cifar10.py --export does after training).

    python export_model.py ckpt/spec-0005 exported/spec
    python export_model.py ckpt/spec-0003 exported/spec-epoch3 --data-dir ~/data/cifar10

The flags are in commands/export_model.py; this file only makes the process ready before MXNet
loads (common/runtime.py).
"""
import sys

from common import runtime

if __name__ == "__main__":
    sys.exit(runtime.start("commands.export_model"))
