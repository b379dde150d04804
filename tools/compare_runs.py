"""Compare training runs offline, from their run folders (no Comet account needed).

    python -m tools.compare_runs runs/RUN_A runs/RUN_B --plot comparison.png
    python -m tools.compare_runs runs/spec-seeds-seed*                      # a seed group
    python -m tools.compare_runs sweeps/spec-resnet_c0-1                    # a sweep's trials

Prints a table of each run's final metrics and draws test accuracy and train loss per epoch of
all runs into one PNG. Runs whose settings differ only in seed and name (a seed group, from
train_cifar10.py --seeds, or runs started by hand) form a group: per group it prints the mean,
standard deviation and minimum of each final metric, and draws each group's mean curve with its
min-max band into --group-plot. It reads files and draws: MXNet is never loaded.
"""
import json
import os
import sys

import numpy as np

from common.cli import ArgumentParser, UserError, command
from training import plots
from training import metrics
from training.settings import PER_RUN_SETTINGS

# (column, metric, "last" or "best") of what the metrics table marks `compared`
SUMMARY = tuple((name if kind == "last" else "%s_%s" % (kind, name), name, kind)
                for name, kind in ((m.name, kind) for m in metrics.METRICS for kind in m.compared))
FINAL_METRICS = tuple(column for column, _, _ in SUMMARY)


class RunFolderError(UserError):
    """A folder that is not a run folder, or one whose record cannot be read."""


def load_run(run_dir):
    """(name, config, per-epoch records) of a run folder written by train_cifar10.py."""
    path = os.path.join(run_dir, metrics.FILE)
    if not os.path.isfile(path):
        raise RunFolderError("%s is not a run folder (it has no metrics.jsonl)" % run_dir)
    try:
        records = metrics.read_file(run_dir)
    except ValueError as e:
        raise RunFolderError("%s is damaged (%s)" % (path, e)) from None
    if not records:
        raise RunFolderError("%s has no completed epoch" % run_dir)
    config_path = os.path.join(run_dir, "config.json")
    config = json.load(open(config_path)) if os.path.isfile(config_path) else {}
    return config.get("run_name", os.path.basename(os.path.normpath(run_dir))), config, records


def run_folders(paths):
    """The run folders paths name: a sweep's folder (sweep.py's sweeps/NAME) stands for the run
    folders of its trials that completed an epoch."""
    folders = []
    for path in paths:
        runs = os.path.join(path, "runs")
        if not (os.path.isfile(os.path.join(path, "trials.csv")) and os.path.isdir(runs)):
            folders.append(path)
            continue
        for name in sorted(os.listdir(runs)):
            path = os.path.join(runs, name, metrics.FILE)
            if os.path.isfile(path) and os.path.getsize(path):
                folders.append(os.path.join(runs, name))
    return folders


def final_metrics(records):
    """{column: value} of SUMMARY for a run's epoch records."""
    def best(name):
        pick = max if metrics.BY_NAME[name].higher_is_better else min
        return pick(r[name] for r in records)
    return {column: records[-1][name] if kind == "last" else best(name) for column, name, kind in SUMMARY}


def _format(column):
    """Seconds to a tenth, the rest to 4 decimals."""
    return "%.1f" if column in metrics.TIMING else "%.4f"


def table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)


def runs_table(runs):
    rows = [("run", "epochs") + FINAL_METRICS]
    for name, _, records in runs:
        final = final_metrics(records)
        rows.append((name, str(len(records)))
                    + tuple(_format(k) % final[k] for k in FINAL_METRICS))
    return table(rows)


def group_runs(runs):
    """[(group name, [runs])] of runs whose settings are equal but for PER_RUN_SETTINGS, in the
    order their first run came; a group is named by its runs' --run-group, else its first run."""
    groups = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run[1].items() if k not in PER_RUN_SETTINGS}, sort_keys=True)
        groups.setdefault(key, []).append(run)
    named = []
    for members in groups.values():
        labels = [config.get("run_group") for _, config, _ in members if config.get("run_group")]
        named.append((labels[0] if labels else members[0][0], members))
    return named


def group_stats(members):
    """{metric: (mean, standard deviation (n - 1; 0 for one run), minimum)} of the final metrics."""
    finals = [final_metrics(records) for _, _, records in members]
    stats = {}
    for k in FINAL_METRICS:
        values = np.array([f[k] for f in finals])
        stats[k] = (values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0, values.min())
    return stats


def groups_report(groups):
    lines = []
    for name, members in groups:
        seeds = ",".join(str(config.get("seed", "?")) for _, config, _ in members)
        lines.append("group %s: %d runs, seeds %s" % (name, len(members), seeds))
        rows = [("  metric", "mean", "std", "min")]
        for k, (mean, std, low) in group_stats(members).items():
            fmt = _format(k)
            rows.append(("  " + k, fmt % mean, fmt % std, fmt % low))
        lines.append(table(rows))
    return "\n".join(lines)


def build_parser():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="run folders (runs/NAME), or a sweep's folder "
                                                    "(sweeps/NAME) for its trials'")
    parser.add_argument("--plot", default="comparison.png", help="where to draw every run's curves")
    parser.add_argument("--group-plot", default="groups.png",
                        help="where to draw each group's mean curve and min-max band (when a group "
                             "has two runs or more)")
    return parser


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    runs = [load_run(d) for d in run_folders(args.run_dirs)]
    if not runs:
        raise RunFolderError("no run in %s has a completed epoch" % ", ".join(args.run_dirs))
    print(runs_table(runs))
    print("plot: %s" % plots.draw_runs([(name, records) for name, _, records in runs], args.plot))
    groups = [(name, members) for name, members in group_runs(runs) if len(members) > 1]
    if groups:
        print(groups_report(groups))
        curves = [(name, [records for _, _, records in members]) for name, members in groups]
        print("group plot: %s" % plots.draw_groups(curves, args.group_plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
