"""What a sweep leaves in its folder, written again after every trial and at its end:

    trials.csv                      every trial: number, state, its metric's value, flags, outcome, duration,
                                    run folder, Comet experiment, worker
    best_command.txt                the best trial's full train_cifar10.py command
    optimization_history.png        Optuna's plots (history once a trial is complete; importances
    param_importances.png           and parallel coordinates from two complete trials on)
    parallel_coordinate.png
    comet/                          the offline archive of the study's own Comet experiment, when
                                    it cannot go online

and one JSON line per ended trial on stdout.
"""
import collections
import csv
import json
import os
import shlex
import sys
import warnings

from optuna.trial import TrialState

from common.files import atomic_write
from training import comet

COLUMNS = ("number", "state", "METRIC", "flags", "outcome", "duration_s", "run_folder", "comet_experiment", "worker")
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate")


def row(trial, metric):
    """A trial as the table and the JSON lines give it (its value under the metric's name)."""
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {"number": trial.number, "state": trial.state.name.lower(), metric: trial.value,
            "flags": trial.user_attrs.get("flags", ""), "outcome": trial.user_attrs.get("outcome"),
            "duration_s": round(duration, 1) if duration is not None else None,
            "run_folder": trial.user_attrs.get("run_folder"),
            "comet_experiment": trial.user_attrs.get("comet_experiment"), "worker": trial.user_attrs.get("worker")}


def after_trial(study, trial, sweep):
    """An Optuna callback: the trial's JSON line on stdout, and the table as it stands, so that it
    is up to date however the sweep ends."""
    print(json.dumps(row(trial, sweep.metric)), flush=True)
    write_table(study, sweep)


def write_table(study, sweep):
    path = os.path.join(sweep.folder, "trials.csv")
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, [sweep.metric if c == "METRIC" else c for c in COLUMNS])
        writer.writeheader()
        for trial in study.get_trials(deepcopy=False):
            writer.writerow(row(trial, sweep.metric))
    return path


def best_trial(study):
    """The best complete trial, or None."""
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def best_command(study, train_args):
    """The best trial's train_cifar10.py command (the sweep's training flags and the trial's), or None."""
    best = best_trial(study)
    if best is None:
        return None
    flags = [shlex.join(train_args), best.user_attrs.get("flags", "")]
    return "python train_cifar10.py %s" % " ".join(filter(None, flags))


def draw(study, folder):
    """Optuna's plots of the study as PNG files in folder; returns the paths drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    wanted = PLOTS if len(complete) >= 2 else PLOTS[:1] if complete else ()
    drawn = []
    for name in wanted:
        with warnings.catch_warnings():  # Optuna calls its matplotlib plots experimental
            warnings.simplefilter("ignore")
            try:
                axes = getattr(optuna_plots, "plot_" + name)(study)
            except (ValueError, RuntimeError):  # e.g. importances of parameters that never varied
                continue
        figure = axes.figure
        figure.set_size_inches(10, 6)
        figure.tight_layout()
        path = os.path.join(folder, name + ".png")
        with atomic_write(path) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        plt.close(figure)
        drawn.append(path)
    return drawn


def write(study, sweep):
    """The folder's table, best command and plots, as they stand now. Returns (the best
    command or None, the files written)."""
    files = [write_table(study, sweep)]
    command = best_command(study, sweep.train_args)
    if command:
        path = os.path.join(sweep.folder, "best_command.txt")
        with atomic_write(path) as tmp, open(tmp, "w") as f:
            f.write(command + "\n")
        files.append(path)
    return command, files + draw(study, sweep.folder)


def log_study(study, sweep, settings, files):
    """The study's own Comet experiment (in the training flags' Comet project): its settings,
    every trial's value, the best trial, the table and the plots. Returns the offline archives
    written (to upload), if it could not go online."""
    run = comet.CometRun.open(comet.Plan("%s-study" % sweep.study_name, sweep.comet_project, sweep.comet_workspace,
                                         os.path.join(sweep.folder, "comet"), settings,
                                         ["sweep", "study-%s" % sweep.study_name]))
    if run is None:
        return []
    for trial in study.get_trials(deepcopy=False):
        if trial.value is not None:
            run.call("log_metric", sweep.metric, trial.value, step=trial.number)
    best = best_trial(study)
    if best is not None:
        run.call("log_others", {"best_trial": best.number, "best_value": best.value,
                                "best_flags": best.user_attrs.get("flags", "")})
    for path in files:
        if path.endswith(".png"):
            run.call("log_image", path, name=os.path.basename(path))
        else:
            run.call("log_asset", path, file_name=os.path.basename(path))
    archives = run.end()
    return archives if not run.online else []


def summary(study, sweep, target):
    """One line: how many trials ended how, and the best."""
    states = collections.Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    best = best_trial(study)
    return "%s of --trials %d; best: %s" % (
        ", ".join("%d %s" % (n, s) for s, n in sorted(states.items())) or "no trials", target,
        "trial %d, %s %s" % (best.number, sweep.metric, best.value) if best else "none yet")


def say_files(sweep, command, files, archives):
    if command:
        print("best trial's command:\n  %s" % command, file=sys.stderr)
    sweep.say("results in %s (%s)" % (sweep.folder, ", ".join(os.path.basename(f) for f in files)))
    if archives:
        print("Comet: the study is saved offline; upload it with:\n  comet upload %s" % " ".join(archives),
              file=sys.stderr)

