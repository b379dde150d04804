#!/usr/bin/env python3
"""Search train_cifar10.py's flags with Optuna: every trial a training run of its own.

    python sweep.py --trials 12 -- --classes 0,1 --epochs 3      # 12 trials of the 2-class task
    python sweep.py --trials 40 --space space.yaml -- --epochs 10
    python sweep.py --help                                       # every flag

Each trial's run folder, the trials table, the best command and the plots land in sweeps/NAME/
(docs/sweeps.md). The flags and the wiring are in commands/sweep.py.
"""
import sys

from common import runtime

if __name__ == "__main__":
    sys.exit(runtime.start("commands.sweep"))
