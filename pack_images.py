#!/usr/bin/env python3
"""Pack an image folder into MXNet RecordIO files for train_cifar10.py --rec-prefix.

    python pack_images.py ROOT PREFIX
    python train_cifar10.py --rec-prefix PREFIX

The flags are in commands/pack_images.py; this file only makes the process ready before MXNet
loads (common/runtime.py).
"""
import sys

from common import runtime

if __name__ == "__main__":
    sys.exit(runtime.start("commands.pack_images"))
