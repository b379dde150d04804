"""The values an epoch reports, one table: every JSON line holds them in this order (a metric
`last_epoch_only` in the last epoch of a run that measures it), Comet logs those `logged`,
sweep.py may optimise any of those in the direction the table gives, curves.png draws those with a
`panel`, tools.compare_runs summarises those `compared`, and the tests read their names here.
A run folder keeps the records in FILE, a JSON line per epoch as printed (read_file reads it).
Imports the standard library only, so that tools which never load MXNet can read it.
"""
import json
import os
from dataclasses import dataclass

FILE = "metrics.jsonl"  # in a run folder


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool = False  # the direction a sweep optimises it in
    logged: bool = True  # a Comet metric of each epoch (else the JSON line and metrics.jsonl only)
    panel: str = None  # the curves.png panel that draws it, or None
    label: str = None  # its line's label in that panel
    timing: bool = False  # read off the clock: it differs between two runs that train the same
    last_epoch_only: bool = False  # measured after training only (test-time augmentation)
    compared: tuple = ()  # what tools.compare_runs shows of it: "last" (its final value), "best"


METRICS = (
    Metric("epoch", logged=False),  # epochs completed before this one (0 for the first)
    Metric("train_loss", panel="train loss", label="train", compared=("last",)),
    Metric("train_acc", higher_is_better=True, panel="accuracy", label="train", compared=("last",)),
    Metric("test_acc", higher_is_better=True, panel="accuracy", label="test", compared=("last", "best")),
    Metric("tta_test_acc", higher_is_better=True, last_epoch_only=True),
    Metric("lr", panel="learning rate (end of epoch)", label="lr"),  # the last update's rate
    Metric("time", logged=False, timing=True, compared=("last",)),  # seconds since training started
    Metric("images_per_sec", higher_is_better=True, timing=True),  # training images a second
    Metric("epoch_time", timing=True),  # seconds of the epoch's training
)
BY_NAME = {m.name: m for m in METRICS}
LOGGED = tuple(m.name for m in METRICS if m.logged)  # Comet's metrics, and what a sweep may optimise
TIMING = frozenset(m.name for m in METRICS if m.timing)


def record(values):
    """The epoch's JSON record: `values` ({name: value}, at least every metric but the last
    epoch's) in the table's order, floats to 6 decimals."""
    return {m.name: (round(values[m.name], 6) if isinstance(values[m.name], float) else values[m.name])
            for m in METRICS if m.name in values}


def read_file(run_dir):
    """The epoch records of a run folder's FILE (OSError where it has none, ValueError where a
    line is damaged)."""
    with open(os.path.join(run_dir, FILE)) as f:
        return [json.loads(line) for line in f if line.strip()]


def panels():
    """[(panel title, [(metric, label)])] in the table's order: the curves of a run."""
    drawn = {}
    for m in METRICS:
        if m.panel:
            drawn.setdefault(m.panel, []).append((m.name, m.label))
    return list(drawn.items())
