"""Where a run's record goes: stdout, the run's own folder, and its Comet experiment (comet.py).

RunLog.log_epoch is the one place an epoch is reported: a JSON line on stdout, a line in
RUN_DIR/metrics.jsonl and the same values on the Comet experiment, under the same names; the run
folder's curves.png is redrawn with it once CURVES_EVERY seconds have passed since it was last
drawn, and at the run's end however it ends. Every file of the run folder is written atomically:
a reader never sees half of one. Only rank 0 of a distributed job reports (SilentLog elsewhere).
"""
import json
import os
import sys
import time

from common import interrupts
from common.files import new_folder, write_json, write_text

from . import checkpoint, metrics, plots
from .comet import CometRun, Plan, as_comet_value, comet_disabled
from .settings import PER_RUN_SETTINGS

STATUS_FILE = "status.json"  # how a run ended, in its folder (RunLog.close, read_status)
# Seconds between redraws of curves.png while a run trains: a drawing (with matplotlib's import
# the first time) costs as much as several training steps of the spec's task, whose epochs are
# seconds long; stdout, metrics.jsonl and Comet have every epoch as it ends.
CURVES_EVERY = 30


def open_run_log(config, settings, resumed=None):
    """The RunLog of a run: its folder (--output-dir or runs/RUN_NAME) and, unless disabled, its
    Comet experiment. settings: what config.recorded_settings gives. resumed: the record of the
    checkpoint a --load-epoch run continues, whose Comet experiment it continues."""
    run_dir, earlier = run_folder(config, resumed)
    comet = None
    if not comet_disabled(config.no_comet):
        params = {k: as_comet_value(v) for k, v in settings.items()}
        tags = [settings["model"], settings["dataset"], "classes-" + settings["classes_tag"],
                settings["device"], "devices-%d" % settings["num_devices"], settings["precision"]]
        if config.run_group:
            tags.append("group-" + config.run_group)
        tags += config.tags
        comet = CometRun.open(Plan(config.run_name, config.comet_project, config.comet_workspace,
                                   os.path.join(run_dir, "comet"), params, tags,
                                   resume=resume_record(resumed, settings) if resumed else None))
        if comet is not None:  # where it went, after the user's Comet settings had their say
            settings = dict(settings, comet_project=comet.project)
    return RunLog(run_dir, settings, comet, history=earlier)


def run_folder(config, resumed=None):
    """(folder, earlier epoch records) of a run. A resumed run continues in its checkpoint's run
    folder, keeping that run's records of the epochs before the checkpoint, where the folder is
    still there, its record readable, and --output-dir names no other folder. Every other run gets
    a folder of its own: --output-dir or runs/RUN_NAME, with -2, -3 ... where that exists."""
    previous = (resumed or {}).get("run_dir")
    named = os.path.abspath(config.output_dir) if config.output_dir else None
    if previous and os.path.isdir(previous) and named in (None, previous):
        try:
            records = metrics.read_file(previous)
        except (OSError, ValueError):  # a damaged record is left as it is
            records = None
        if records is not None:
            return previous, [r for r in records if r.get("epoch", -1) < resumed["epoch"]]
    return new_folder(config.output_dir or os.path.join("runs", config.run_name)), []


def resume_record(checkpoint_record, settings):
    """What a resume tells its Comet experiment: {'experiment_key', 'number' (1 for the first
    resume), 'from_epoch', 'changed': 'lr 0.1 -> 0.01; epochs 38 -> 50'} (settings that differ
    from those the checkpoint's training ran with)."""
    before = checkpoint_record.get("config", {})
    changed = ["%s %s -> %s" % (k, as_comet_value(before.get(k)), as_comet_value(v))
               for k, v in sorted(settings.items())
               if k not in PER_RUN_SETTINGS and before.get(k) != v]
    return {"experiment_key": checkpoint_record.get("comet_experiment"),
            "number": checkpoint.resume_count(checkpoint_record),
            "from_epoch": checkpoint_record["epoch"], "changed": "; ".join(changed) or "nothing"}


class RunLog:
    """A run's record: its folder (config.json, metrics.jsonl and curves.png; at the end
    confusion_matrix.json/.png, model.txt and status.json: finished, interrupted, pruned or failed,
    with the Comet experiment's key),
    stdout, and Comet if enabled."""

    keeps_records = True

    def __init__(self, run_dir, settings, comet=None, stream=None, history=()):
        self.run_dir = run_dir
        self.comet = comet
        self.comet_ended = False
        self.stream = stream or sys.stdout
        self.title = settings.get("run_name", "")
        self.history = list(history)  # the epochs before a resume, in the folder it continues
        write_json(os.path.join(run_dir, "config.json"), dict(sorted(settings.items())))
        self.metrics_path = os.path.join(run_dir, metrics.FILE)
        self.curves_path = os.path.join(run_dir, "curves.png")
        self.curves_drawn, self.curves_drawn_at = 0, time.monotonic()  # epochs in curves.png, when
        self._write_metrics()

    @property
    def experiment_key(self):
        """The Comet experiment's key (what checkpoints keep to continue it), or None."""
        return self.comet.experiment_key if self.comet is not None else None

    def log_epoch(self, record, step):
        """Reports one epoch everywhere; step is the number of updates done so far."""
        line = json.dumps(record)
        self.stream.write(line + "\n")
        self.stream.flush()
        self.history.append(record)
        self._write_metrics()
        if time.monotonic() - self.curves_drawn_at >= CURVES_EVERY:
            self.draw_curves()
        if self.comet is not None:
            self.comet.call("log_metrics", {k: record[k] for k in metrics.LOGGED if k in record},
                            step=step, epoch=record["epoch"])

    def _write_metrics(self):
        write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in self.history))

    def draw_curves(self):
        """Redraws curves.png with every epoch logged so far (nothing when it has them all)."""
        if len(self.history) > self.curves_drawn:
            plots.draw_curves(self.history, self.curves_path, self.title)
            self.curves_drawn, self.curves_drawn_at = len(self.history), time.monotonic()

    def finish(self, confusion, class_names, model_summary, model=None, results=None):
        """The end of a run that trained to the end: confusion matrix (numbers and picture), model
        summary, final metrics and pictures, then close('finished'). model: (name, files) of an
        export to log to Comet as a model. results: values measured after training (the test
        accuracy with population statistics), kept in status.json and as Comet's final_* values."""
        write_json(os.path.join(self.run_dir, "confusion_matrix.json"),
                   {"labels": class_names, "matrix": confusion})
        confusion_png = plots.draw_confusion(confusion, class_names,
                                             os.path.join(self.run_dir, "confusion_matrix.png"))
        self.draw_curves()
        write_text(os.path.join(self.run_dir, "model.txt"), model_summary + "\n")
        if self.comet is not None:
            self.comet.call("log_confusion_matrix", matrix=confusion, labels=class_names,
                            title="test set", file_name="confusion-matrix.json")
            self.comet.call("set_model_graph", model_summary)
            for path in (self.curves_path, confusion_png):
                if os.path.exists(path):  # no curves without a completed epoch
                    self.comet.call("log_image", path, name=os.path.basename(path))
            if model is not None:
                name, files = model
                for path in files:
                    self.comet.call("log_model", name, path, file_name=os.path.basename(path))
            if self.history:
                last = self.history[-1]
                final = dict({k: last[k] for k in metrics.LOGGED if not metrics.BY_NAME[k].last_epoch_only},
                             **(results or {}))
                self.comet.call("log_others", {"final_" + k: v for k, v in final.items()})
        self.close("finished", results=results)

    def close(self, status, reason=None, results=None):
        """Ends the record: status.json says how the run ended ('finished', 'interrupted' by the
        user, 'pruned' by a sweep, or 'failed') and why, and the Comet experiment is ended (its
        upload, or its offline archive written). Closing again after an interrupted close ends
        Comet then."""
        self.draw_curves()
        self._write_status(status, reason, results)
        if self.comet is None or self.comet_ended:
            return
        if status in ("failed", "pruned"):
            self.comet.call("add_tag", status)
        if status == "failed":
            self.comet.call("log_others", {"status": status, "failure": reason})
        else:
            self.comet.call("log_others", dict({"status": status}, **({"reason": reason} if reason else {})))
        interrupts.reach("upload")
        archives = self.comet.end()
        self.comet_ended = True
        if archives and not self.comet.online:
            print("Comet: this run is saved offline; upload it with:\n  comet upload %s"
                  % " ".join(archives), file=sys.stderr)

    def fail(self, reason):
        """The end of a run that failed: the folder and Comet say so and why; nothing else is
        reported of the broken network."""
        self.close("failed", reason)

    def _write_status(self, status, reason=None, results=None):
        write_json(os.path.join(self.run_dir, STATUS_FILE),
                   dict({"status": status, "reason": reason, "epochs_logged": len(self.history),
                         "comet_experiment": self.experiment_key}, **(results or {})))


def read_status(run_dir):
    """The status.json of a run folder ({'status', 'reason', 'epochs_logged', 'comet_experiment',
    ...}), or None where the run ended before its record did."""
    try:
        with open(os.path.join(run_dir, STATUS_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class SilentLog:
    """The log of a worker other than rank 0 in a distributed job: rank 0 reports the job, and
    this one keeps nothing, so that the run's wiring is the same on every worker."""
    experiment_key = None
    keeps_records = False  # nothing is measured for it after training

    def log_epoch(self, record, step):
        pass

    def finish(self, confusion, class_names, model_summary, model=None, results=None):
        pass

    def close(self, status, reason=None, results=None):
        pass

    def fail(self, reason):
        pass
