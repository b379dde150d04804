"""One trial of a sweep: a train_cifar10.py run in a process of its own, with the sweep's training
flags, the trial's suggested flags, and its own run folder, name, Comet tags and checkpoints.

Each JSON line the run prints is read as it comes: its metric is reported to the trial (step:
epochs done), and when the pruner says so the run is sent SIGUSR1, which stops it as Ctrl-C would
(its checkpoint and run folder kept, status `pruned`). The run is started and stopped as
child_run.py says: if the sweep's process dies, however it dies, the run gets SIGTERM.
"""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

import optuna

from common import interrupts
from common.cli import EXIT_DIVERGED, EXIT_INTERRUPTED, UserError
from common.files import unused_name
from training import tracking

from . import child_run


class TrialFailed(Exception):
    """A run that ended without a result but should not stop the sweep (it diverged, or was
    killed): the trial is failed, the next one runs."""


class TrialError(UserError):
    """A run that ended with an error every trial would meet (its message is above it)."""


@dataclass
class Sweep:
    """What every trial of a sweep shares."""
    study_name: str
    folder: str  # sweeps/NAME: runs/, the table, the plots
    train_args: list  # the training flags after --
    params: list  # [sweep_space.Param]
    metric: str  # the JSON-line value the objective is (its last one)
    quiet: bool = False
    # the training flags' --comet-project, --comet-workspace and --no-comet
    comet_project: str = None
    comet_workspace: str = None
    no_comet: bool = False

    def say(self, message):
        if not self.quiet:
            print("sweep %s: %s" % (self.study_name, message), file=sys.stderr, flush=True)


def run_folder(sweep, number):
    """The trial's run folder: runs/trial-NNNN, or with -2, -3 ... when one of that name is left
    from an older study of the same name."""
    return unused_name(os.path.join(sweep.folder, "runs", "trial-%04d" % number))


def own_args(sweep, number, run_dir):
    """The flags that make the run this trial's: its folder, name, group, tags and checkpoints."""
    return ["--output-dir", run_dir, "--run-name", "%s-trial-%d" % (sweep.study_name, number),
            "--run-group", sweep.study_name, "--tags", "study-%s,trial-%d" % (sweep.study_name, number),
            "--model-prefix", os.path.join(run_dir, "checkpoint")]


def objective(trial, sweep):
    """Runs the trial; returns its metric's last value. Raises optuna.TrialPruned (pruned),
    TrialFailed (diverged or killed: the sweep goes on), TrialError (an error: the sweep stops)
    or Interrupted (the run or the sweep was stopped)."""
    values = {p.name: p.suggest(trial) for p in sweep.params}
    suggested = [a for p in sweep.params for a in p.args(values[p.name])]
    run_dir = run_folder(sweep, trial.number)
    for key, value in (("flags", shlex.join(suggested)), ("run_folder", os.path.abspath(run_dir)),
                       ("outcome", "running"), ("comet_experiment", None),
                       ("worker", "%s:%d" % (socket.gethostname(), os.getpid()))):
        trial.set_user_attr(key, value)
    retry = retried_trial(trial)
    child = None
    try:
        interrupts.reach("trial %d" % trial.number)
        sweep.say("trial %d%s: %s; run folder %s" % (
            trial.number, "" if retry is None else " (trial %d again)" % retry, shlex.join(suggested), run_dir))
        child = child_run.start(sweep.train_args + suggested + own_args(sweep, trial.number, run_dir),
                                stdout=subprocess.PIPE, text=True)
        last, pruned = follow(child, trial, sweep.metric)
        code = child.wait()
    except KeyboardInterrupt as e:
        if child is not None:
            child_run.stop(child, e)
        end(trial, run_dir, "interrupted")
        raise
    return result(trial, run_dir, code, last, pruned, sweep.metric)


def retried_trial(trial):
    """The number of the trial this one runs again (lost with its worker, or interrupted), or None."""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    lost = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    return lost if lost is not None else trial.user_attrs.get("retry_of")


def follow(child, trial, metric):
    """Reads the run's JSON lines to its end: (the metric's last value or None, whether the run
    was pruned). Each value is reported to the trial; SIGUSR1 stops the run when it is pruned."""
    last, pruned = None, False
    for line in child.stdout:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or metric not in record:
            continue
        last = record[metric]
        if not pruned:
            trial.report(last, step=int(record.get("epoch", 0)) + 1)
            if trial.should_prune():
                pruned = True
                child.send_signal(interrupts.PRUNE)
    return last, pruned


def result(trial, run_dir, code, last, pruned, metric):
    """The trial's value from how its run ended, or the exception that says how it failed."""
    if pruned and code == EXIT_INTERRUPTED:
        end(trial, run_dir, "pruned")
        raise optuna.TrialPruned()
    if code == 0 and last is not None:  # (a pruned run may have finished before the signal came)
        end(trial, run_dir, "finished")
        return last
    if code == 0:
        end(trial, run_dir, "failed (no %s)" % metric)
        raise TrialError("trial %d's run printed no %s: check --metric" % (trial.number, metric))
    if code == EXIT_DIVERGED:
        end(trial, run_dir, "diverged")
        raise TrialFailed("diverged")
    if code < 0:
        end(trial, run_dir, "killed by %s" % signal.Signals(-code).name)
        raise TrialFailed("killed by %s" % signal.Signals(-code).name)
    if code == EXIT_INTERRUPTED:  # somebody stopped the run itself: the sweep stops with it
        end(trial, run_dir, "interrupted")
        raise interrupts.Interrupted(signal.SIGINT)
    end(trial, run_dir, "failed (exit %d)" % code)
    raise TrialError("trial %d's run ended with exit code %d (its error is above); the sweep stops"
                     % (trial.number, code))


def end(trial, run_dir, outcome):
    """Keeps how the run ended and its Comet experiment (from its status.json) with the trial."""
    trial.set_user_attr("outcome", outcome)
    status = tracking.read_status(run_dir)
    if status is not None:  # (none when the run stopped before its folder had a record)
        trial.set_user_attr("comet_experiment", status.get("comet_experiment"))
