"""Compare training runs offline, from their run folders (no Comet account needed).

    python -m tools.compare_runs runs/RUN_A runs/RUN_B --plot comparison.png

Prints a table of each run's final metrics and draws test accuracy and train loss per epoch of
all runs into one PNG.
"""
import argparse
import json
import os
import sys


def load_run(run_dir):
    """(name, config, per-epoch records) of a run folder written by train_cifar10.py."""
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(metrics):
        raise ValueError("%s is not a run folder (it has no metrics.jsonl)" % run_dir)
    with open(metrics) as f:
        records = [json.loads(line) for line in f if line.strip()]
    config_path = os.path.join(run_dir, "config.json")
    config = json.load(open(config_path)) if os.path.isfile(config_path) else {}
    return config.get("run_name", os.path.basename(os.path.normpath(run_dir))), config, records


def table(runs):
    rows = [("run", "epochs", "test_acc", "best_test_acc", "train_loss", "time_s")]
    for name, _, records in runs:
        last = records[-1] if records else {}
        rows.append((name, str(len(records)), "%.4f" % last.get("test_acc", float("nan")),
                     "%.4f" % max((r["test_acc"] for r in records), default=float("nan")),
                     "%.4f" % last.get("train_loss", float("nan")),
                     "%.1f" % last.get("time", float("nan"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, _, records in runs:
        epochs = [r["epoch"] + 1 for r in records]
        acc_ax.plot(epochs, [r["test_acc"] for r in records], marker="o", label=name)
        loss_ax.plot(epochs, [r["train_loss"] for r in records], marker="o", label=name)
    acc_ax.set(title="test accuracy", xlabel="epoch", ylabel="accuracy")
    loss_ax.set(title="train loss", xlabel="epoch", ylabel="cross-entropy")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="run folders (runs/NAME)")
    parser.add_argument("--plot", default="comparison.png", help="where to write the PNG")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(d) for d in args.run_dirs]
    except (ValueError, OSError) as e:  # json errors are ValueErrors
        print("error: %s" % e, file=sys.stderr)
        return 1
    print(table(runs))
    plot(runs, args.plot)
    print("plot: %s" % args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
