"""Where a run's record goes: stdout, the run's own folder, and Comet.ml.

RunLog.log_epoch is the one place an epoch is reported: a JSON line on stdout, a line in
RUN_DIR/metrics.jsonl and the same values on the Comet experiment, under the same names; the run
folder's curves.png is redrawn with it once CURVES_EVERY seconds have passed since it was last
drawn, and at the run's end however it ends.

Comet never stops training. With an API key (COMET_API_KEY or a Comet config file) the run goes
online; without one, or when the online experiment cannot start or fails later, it is written as
an offline archive under RUN_DIR/comet/ and the `comet upload` command is printed at the end.
A training resumed from a checkpoint continues the checkpoint's experiment (its key is in the
checkpoint), online or, failing that, as an offline archive that uploads into it.
comet_ml is imported only when Comet is used. Only rank 0 of a distributed job reports.
"""
import glob
import json
import os
import sys
import time

from common import interrupts
from common.files import write_json

from . import checkpoint, metrics, plots
from .settings import PER_RUN_SETTINGS

DEFAULT_COMET_PROJECT = "cifar10-gluon"  # where runs go unless a flag, COMET_PROJECT_NAME or the config file says
# Startup with a bad key or no network must not hang: comet_ml's default retries wait ~35 s
# before giving up. These make a failed start return at once; a user's own setting wins.
COMET_FAST_FAIL = {
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_TOTAL": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_CONNECT": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_READ": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_STATUS": "0",
    "COMET_HTTP_SESSION_RETRY_TOTAL": "1",
    "COMET_TIMEOUT_HTTP": "10",  # seconds per request
    "COMET_LOGGING_CONSOLE": "critical",  # our one warning line speaks for Comet
    # If the connection is lost mid-run, comet_ml's own fallback keeps an offline archive.
    "COMET_FALLBACK_STREAMER_KEEP_OFFLINE_ZIP": "true",
}
# This project's defaults for what comet_ml collects by itself, each given to comet_ml only where
# the user's Comet settings (COMET_* variables, config file) say nothing, as comet_ml documents:
# system metrics on (CPU, memory, disk, network; GPU utilisation, memory and model where there is one); the
# code, git, console output, command line, host details (user, IP) and automatic parameters off,
# so a run logs what we choose and nothing of the environment, where the API key lives.
COMET_DEFAULTS = {  # comet_ml's config key: (Experiment argument, value)
    "comet.auto_log.env_details": ("log_env_details", True),
    "comet.auto_log.env_cpu": ("log_env_cpu", True),
    "comet.auto_log.env_gpu": ("log_env_gpu", True),
    "comet.auto_log.env_host": ("log_env_host", False),
    "comet.auto_log.code": ("log_code", False),
    "comet.auto_log.graph": ("log_graph", False),
    "comet.auto_log.parameters": ("auto_param_logging", False),
    "comet.auto_log.metrics": ("auto_metric_logging", False),
    "comet.auto_log.cli_arguments": ("parse_args", False),
    "comet.auto_log.output_logger": ("auto_output_logging", False),
    "comet.auto_log.git_metadata": ("log_git_metadata", False),
    "comet.auto_log.git_patch": ("log_git_patch", False),
}
STATUS_FILE = "status.json"  # how a run ended, in its folder (RunLog.close, read_status)
# Seconds between redraws of curves.png while a run trains: a drawing (with matplotlib's import
# the first time) costs as much as several training steps of the spec's task, whose epochs are
# seconds long; stdout, metrics.jsonl and Comet have every epoch as it ends.
CURVES_EVERY = 30


def comet_disabled(no_comet_flag):
    return no_comet_flag or os.environ.get("COMET_DISABLE", "").lower() in ("1", "true", "yes")


def make_run_dir(path):
    """Creates the run folder; an existing one is never reused (a -2, -3 ... suffix is added)."""
    candidate, n = path, 1
    while True:
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = "%s-%d" % (path, n)


def open_run_log(config, settings, resumed=None):
    """The RunLog of a run: its folder (--output-dir or runs/RUN_NAME) and, unless disabled, its
    Comet experiment. settings: what config.recorded_settings gives. resumed: the record of the
    checkpoint a --load-epoch run continues, whose Comet experiment it continues."""
    run_dir = make_run_dir(config.output_dir or os.path.join("runs", config.run_name))
    comet = None
    if not comet_disabled(config.no_comet):
        params = {k: _as_comet_value(v) for k, v in settings.items()}
        tags = [settings["model"], settings["dataset"], "classes-" + settings["classes_tag"],
                settings["device"], "devices-%d" % settings["num_devices"], settings["precision"]]
        if config.run_group:
            tags.append("group-" + config.run_group)
        tags += config.tags
        comet = CometRun.open(config.run_name, config.comet_project, config.comet_workspace,
                              os.path.join(run_dir, "comet"), params, tags,
                              resume=resume_record(resumed, settings) if resumed else None)
        if comet is not None:  # where it went, after the user's Comet settings had their say
            settings = dict(settings, comet_project=comet.project)
    return RunLog(run_dir, settings, comet)


def resume_record(checkpoint_record, settings):
    """What a resume tells its Comet experiment: {'experiment_key', 'number' (1 for the first
    resume), 'from_epoch', 'changed': 'lr 0.1 -> 0.01; epochs 38 -> 50'} (settings that differ
    from those the checkpoint's training ran with)."""
    before = checkpoint_record.get("config", {})
    changed = ["%s %s -> %s" % (k, _as_comet_value(before.get(k)), _as_comet_value(v))
               for k, v in sorted(settings.items())
               if k not in PER_RUN_SETTINGS and before.get(k) != v]
    return {"experiment_key": checkpoint_record.get("comet_experiment"),
            "number": checkpoint.resume_count(checkpoint_record),
            "from_epoch": checkpoint_record["epoch"], "changed": "; ".join(changed) or "nothing"}


def _as_comet_value(value):
    """A setting as Comet shows it: lists joined by commas ('0,1')."""
    return ",".join(map(str, value)) if isinstance(value, list) else value


def warn(message):
    print("warning: %s" % message, file=sys.stderr, flush=True)


class CometRun:
    """A comet_ml experiment whose every call is guarded.

    On the first failure the experiment is dropped and an offline one takes its place, replaying
    what was logged so far, so the dashboard record is never lost and training never stops.
    """

    @classmethod
    def open(cls, name, project, workspace, archive_dir, params, tags, resume=None):
        """The run's experiment, or None where comet_ml's own switch (COMET_AUTO_LOG_DISABLE)
        turns Comet off. project/workspace: the flags, None where not given."""
        for key, value in COMET_FAST_FAIL.items():
            os.environ.setdefault(key, value)
        import comet_ml

        config = comet_ml.get_config()
        if config["comet.auto_log.disable"]:  # comet_ml's documented "disabled": no Comet at all
            print("Comet: disabled by your Comet settings (COMET_AUTO_LOG_DISABLE, or disable in the "
                  "config file's [comet_auto_log]); the run folder keeps the record", file=sys.stderr)
            return None
        return cls(comet_ml, config, name, project, workspace, archive_dir, params, tags, resume)

    def __init__(self, comet_ml, config, name, project, workspace, archive_dir, params, tags, resume):
        self.comet_ml = comet_ml
        self.archive_dir = archive_dir
        # A flag when given, else COMET_PROJECT_NAME / the config file, else this project's default;
        # the workspace is left to comet_ml's settings when no flag gives it.
        self.project = project or config["comet.project_name"] or DEFAULT_COMET_PROJECT
        self.workspace = workspace
        self.options = {argument: value for key, (argument, value) in COMET_DEFAULTS.items()
                        if config[key] is None}
        self.key = resume["experiment_key"] if resume else None  # the experiment to continue
        self.replay = [("add_tags", (tags,), {})]
        if self.key is None:  # a new experiment: its name and settings
            self.replay += [("set_name", (name,), {}),
                            ("log_parameters", (dict(params, comet_project=self.project),), {})]
        if resume:
            n = resume["number"]
            self.replay += [("add_tag", ("resumed",), {}),
                            ("log_others", ({"resume_%d_from_epoch" % n: resume["from_epoch"],
                                             "resume_%d_changed" % n: resume["changed"]},), {})]
        self.experiment, self.online = None, False
        # COMET_START_ONLINE=false (or COMET_OFFLINE) asks for offline archives: no warning then.
        wants_online = config["comet.start.online"] is not False and not config["comet.offline"]
        if config["comet.api_key"] and wants_online:
            self.experiment = self._start(online=True)
            if self.experiment is not None and not self.experiment.alive:
                self._drop("Comet did not accept the connection (bad API key, no network, or no "
                           "experiment %s to continue)" % self.key if self.key else
                           "Comet did not accept the connection (bad API key, or no network)")
            self.online = self.experiment is not None
        if self.experiment is None:
            self.experiment = self._start(online=False)
        self._replay()

    @property
    def experiment_key(self):
        """The key of the experiment this training logs to: what checkpoints keep."""
        return self.key or self.experiment.get_key()

    def _start(self, online):
        os.makedirs(self.archive_dir, exist_ok=True)
        if self.key:  # continue it
            kind = self.comet_ml.ExistingExperiment if online else self.comet_ml.ExistingOfflineExperiment
            where = dict(experiment_key=self.key)
        else:
            kind = self.comet_ml.Experiment if online else self.comet_ml.OfflineExperiment
            where = dict(project_name=self.project, workspace=self.workspace)
        try:
            return kind(offline_directory=self.archive_dir, display_summary_level=0, **where,
                        **self.options)
        except Exception as e:  # noqa: BLE001 - whatever Comet raises, training goes on
            if not online:
                raise
            warn("Comet could not start (%s)" % e)
            return None

    def _drop(self, reason):
        warn("%s; this run is kept as an offline Comet archive in %s" % (reason, self.archive_dir))
        try:
            self.experiment.end()
        except Exception:  # noqa: BLE001
            pass
        self.experiment, self.online = None, False

    def _replay(self):
        for method, args, kwargs in self.replay:
            try:
                getattr(self.experiment, method)(*args, **kwargs)
            except Exception:  # noqa: BLE001 - fails offline too: the run folder still has it
                pass

    def call(self, method, *args, **kwargs):
        self.replay.append((method, args, kwargs))
        try:
            getattr(self.experiment, method)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if not self.online:
                warn("Comet offline logging failed (%s); the local record in the run folder is "
                     "complete" % e)
                return
            # The experiment exists online: its archive continues it (what already reached it
            # may arrive twice), so that checkpoints keep one key for the whole training.
            self.key = self.experiment_key
            self._drop("Comet failed (%s)" % e)
            self.experiment = self._start(online=False)
            self._replay()

    def end(self):
        """Ends the experiment; returns the offline archives written for it (to upload)."""
        try:
            self.experiment.end()
        except Exception as e:  # noqa: BLE001
            warn("Comet could not finish cleanly (%s)" % e)
        return sorted(glob.glob(os.path.join(self.archive_dir, "*.zip")))


class RunLog:
    """A run's record: its folder (config.json, metrics.jsonl and curves.png; at the end
    confusion_matrix.json/.png, model.txt and status.json: finished, interrupted, pruned or failed,
    with the Comet experiment's key),
    stdout, and Comet if enabled."""

    keeps_records = True

    def __init__(self, run_dir, settings, comet=None, stream=None):
        self.run_dir = run_dir
        self.comet = comet
        self.comet_ended = False
        self.stream = stream or sys.stdout
        self.title = settings.get("run_name", "")
        self.history = []
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        self.curves_path = os.path.join(run_dir, "curves.png")
        self.curves_drawn, self.curves_drawn_at = 0, time.monotonic()  # epochs in curves.png, when
        open(self.metrics_path, "w").close()

    @property
    def experiment_key(self):
        """The Comet experiment's key (what checkpoints keep to continue it), or None."""
        return self.comet.experiment_key if self.comet is not None else None

    def log_epoch(self, record, step):
        """Reports one epoch everywhere; step is the number of updates done so far."""
        line = json.dumps(record)
        self.stream.write(line + "\n")
        self.stream.flush()
        with open(self.metrics_path, "a") as f:
            f.write(line + "\n")
        self.history.append(record)
        if time.monotonic() - self.curves_drawn_at >= CURVES_EVERY:
            self.draw_curves()
        if self.comet is not None:
            self.comet.call("log_metrics", {k: record[k] for k in metrics.LOGGED if k in record},
                            step=step, epoch=record["epoch"])

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
        with open(os.path.join(self.run_dir, "model.txt"), "w") as f:
            f.write(model_summary + "\n")
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
