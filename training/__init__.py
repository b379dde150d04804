"""The parts of a training run, below the scripts that wire them together.

    runtime       the process: a supported Python, every CPU core, an MXNet build that loads
    files         atomic writes, checksums, progress bars
    config        RunConfig: the settings of one run, resolved once from the flags
    devices       the contexts (CPU or GPUs) this process computes on
    distributed   where this process stands in a job: kvstore, rank, its shard of the data
    schedules     learning-rate schedules, functions of the update count alone
    state         TrainState: the network, its Trainer and what one epoch hands the next
    loop          train_one_epoch, evaluate, fit
    checkpoint    checkpoints and exports: what they hold, saving, checking, loading
    tracking      where a run is reported: stdout, its run folder, Comet.ml

Importing the package prepares the process before MXNet loads (runtime.prepare), so every
script imports it first.
"""
from . import runtime

runtime.prepare()
