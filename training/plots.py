"""The pictures of runs: a run's curves and confusion matrix, and runs or seed groups side by side.

Every picture is a PNG written atomically (a reader never sees half a file). Figures are
matplotlib's Figure objects drawn by its Agg renderer, without pyplot: no display, no global
figure list, and matplotlib's lighter import, at the time a picture is drawn.
"""
import numpy as np

from common.files import atomic_write

from . import metrics

# The curves' margins and gaps (fractions of the figure), fixed rather than fitted with
# tight_layout: fitting costs as much as drawing, and the curves' labels are the same every time.
CURVES_LAYOUT = dict(left=0.045, right=0.99, bottom=0.14, top=0.82, wspace=0.28)


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _epochs(records):
    """x values: the epochs as the JSON lines number them (from 0)."""
    return [r["epoch"] for r in records]


def _style(ax, title):
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _save(figure, path):
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def draw_curves(records, path, title=""):
    """Train and test accuracy, train loss and learning rate by epoch of one run's records (the
    JSON lines)."""
    curves = metrics.panels()
    figure = _figure(figsize=(13, 3.6))
    axes = figure.subplots(1, len(curves))
    for ax, (panel, series) in zip(axes, curves):
        for metric, label in series:
            ax.plot(_epochs(records), [r[metric] for r in records], marker="o", markersize=3, label=label)
        _style(ax, panel)
        if len(series) > 1:
            ax.legend()
    figure.suptitle(title)
    figure.subplots_adjust(**CURVES_LAYOUT)
    return _save(figure, path)


def draw_confusion(matrix, labels, path, title="test set"):
    """A heat map of the confusion matrix (rows: true class, columns: predicted), counts in cells."""
    matrix = np.asarray(matrix)
    size = max(4.0, 0.55 * len(labels) + 2)
    figure = _figure(figsize=(size + 1, size))
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 20:  # counts stay readable up to CIFAR-100's superclasses
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > matrix.max() / 2 else "black")
    ax.set_title("%s: %d of %d right" % (title, np.trace(matrix), matrix.sum()))
    figure.tight_layout()
    return _save(figure, path)


def draw_runs(runs, path):
    """Test accuracy and train loss by epoch of several runs: [(name, records)]."""
    figure = _figure(figsize=(12, 4))
    axes = figure.subplots(1, 2)
    for name, records in runs:
        axes[0].plot(_epochs(records), [r["test_acc"] for r in records], marker="o", label=name)
        axes[1].plot(_epochs(records), [r["train_loss"] for r in records], marker="o", label=name)
    _label(axes)
    return _save(figure, path)


def draw_groups(groups, path):
    """Per group of runs ([(name, [records of each run])]): the mean test accuracy and train loss
    by epoch, in a band from the lowest to the highest run (over the epochs all of them have)."""
    figure = _figure(figsize=(12, 4))
    axes = figure.subplots(1, 2)
    for name, runs in groups:
        epochs = min(len(records) for records in runs)
        for ax, metric in zip(axes, ("test_acc", "train_loss")):
            values = np.array([[r[metric] for r in records[:epochs]] for records in runs])
            x = _epochs(runs[0][:epochs])
            line, = ax.plot(x, values.mean(axis=0), marker="o", label="%s (%d runs)" % (name, len(runs)))
            ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    _label(axes)
    return _save(figure, path)


def _label(axes):
    for ax, title in zip(axes, ("test accuracy", "train loss")):
        _style(ax, title)
        ax.legend(fontsize="small")
    axes[0].figure.tight_layout()
