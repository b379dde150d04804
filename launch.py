#!/usr/bin/env python3
"""Run a training command on MXNet's parameter server: one scheduler, servers and workers.

    python launch.py -n 2 -- python train_cifar10.py --kv-store dist_sync --classes 0,1
    python launch.py -n 4 -s 2 -H hosts -- python train_cifar10.py --kv-store dist_sync

The launcher is commands/launch.py; it uses the standard library only, so MXNet never loads in
this process.
"""
import sys

from commands import launch

if __name__ == "__main__":
    sys.exit(launch.main())
