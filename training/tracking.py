"""Where a run's record goes: stdout, the run's own folder, and Comet.ml.

RunLog.log_epoch is the one place an epoch is reported: a JSON line on stdout, a line in
RUN_DIR/metrics.jsonl and the same values on the Comet experiment, under the same names.

Comet never stops training. With an API key (COMET_API_KEY or a Comet config file) the run goes
online; without one, or when the online experiment cannot start or fails later, it is written as
an offline archive under RUN_DIR/comet/ and the `comet upload` command is printed at the end.
comet_ml is imported only when Comet is used. Only rank 0 of a distributed job reports.
"""
import glob
import json
import os
import sys

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
# What comet_ml would otherwise collect by itself: off, so a run logs exactly what we choose
# (and nothing from the environment, where the API key lives).
COMET_OPTIONS = dict(log_code=False, log_graph=False, auto_param_logging=False,
                     auto_metric_logging=False, parse_args=False, auto_output_logging=False,
                     log_env_details=False, log_git_metadata=False, log_git_patch=False,
                     log_env_gpu=False, log_env_host=False, log_env_cpu=False,
                     display_summary_level=0)
EPOCH_METRICS = ("train_loss", "train_acc", "test_acc", "lr", "epoch_time", "images_per_sec")


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


def open_run_log(config, settings):
    """The RunLog of a run: its folder (--output-dir or runs/RUN_NAME) and, unless disabled, its
    Comet experiment. settings: what config.recorded_settings gives."""
    run_dir = make_run_dir(config.output_dir or os.path.join("runs", config.run_name))
    comet = None
    if not comet_disabled(config.no_comet):
        params = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in settings.items()}
        tags = [settings["model"], settings["dataset"], "classes-" + settings["classes_tag"],
                settings["device"], "devices-%d" % settings["num_devices"]]
        comet = CometRun(config.run_name, config.comet_project, config.comet_workspace,
                         os.path.join(run_dir, "comet"), params, tags)
    return RunLog(run_dir, settings, comet)


def warn(message):
    print("warning: %s" % message, file=sys.stderr, flush=True)


class CometRun:
    """A comet_ml experiment whose every call is guarded.

    On the first failure the experiment is dropped and an offline one takes its place, replaying
    what was logged so far, so the dashboard record is never lost and training never stops.
    """

    def __init__(self, name, project, workspace, archive_dir, params, tags):
        for key, value in COMET_FAST_FAIL.items():
            os.environ.setdefault(key, value)
        import comet_ml

        self.comet_ml = comet_ml
        self.archive_dir = archive_dir
        self.replay = [("set_name", (name,), {}), ("add_tags", (tags,), {}),
                       ("log_parameters", (params,), {})]
        self.project, self.workspace = project, workspace
        self.experiment, self.online = None, False
        if comet_ml.get_config()["comet.api_key"]:
            self.experiment = self._start(online=True)
            if self.experiment is not None and not self.experiment.alive:
                self._drop("Comet did not accept the connection (bad API key, or no network)")
            self.online = self.experiment is not None
        if self.experiment is None:
            self.experiment = self._start(online=False)
        self._replay()

    def _start(self, online):
        os.makedirs(self.archive_dir, exist_ok=True)
        kind = self.comet_ml.Experiment if online else self.comet_ml.OfflineExperiment
        try:
            return kind(project_name=self.project, workspace=self.workspace,
                        offline_directory=self.archive_dir, **COMET_OPTIONS)
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
    """A run's record: its folder (config.json, metrics.jsonl, and at the end status.json: finished,
    interrupted or failed), stdout, and Comet if enabled."""

    def __init__(self, run_dir, settings, comet=None, stream=None):
        self.run_dir = run_dir
        self.comet = comet
        self.stream = stream or sys.stdout
        self.history = []
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        open(self.metrics_path, "w").close()

    def log_epoch(self, record, step):
        """Reports one epoch everywhere; step is the number of updates done so far."""
        line = json.dumps(record)
        self.stream.write(line + "\n")
        self.stream.flush()
        with open(self.metrics_path, "a") as f:
            f.write(line + "\n")
        self.history.append(record)
        if self.comet is not None:
            self.comet.call("log_metrics", {k: record[k] for k in EPOCH_METRICS},
                            step=step, epoch=record["epoch"])

    def finish(self, confusion, class_names, model_summary, status="finished"):
        """The end of a run: confusion matrix, model summary and final metrics, then Comet's end.
        status: 'finished', or 'interrupted' for a run stopped by the user."""
        self._write_status(status)
        with open(os.path.join(self.run_dir, "confusion_matrix.json"), "w") as f:
            json.dump({"labels": class_names, "matrix": confusion}, f)
        with open(os.path.join(self.run_dir, "model.txt"), "w") as f:
            f.write(model_summary + "\n")
        if self.comet is None:
            return
        self.comet.call("log_confusion_matrix", matrix=confusion, labels=class_names,
                        title="test set", file_name="confusion-matrix.json")
        self.comet.call("set_model_graph", model_summary)
        if self.history:
            final = {k: self.history[-1][k] for k in EPOCH_METRICS}
            self.comet.call("log_others", {"final_" + k: v for k, v in final.items()})
        self.comet.call("log_other", "status", status)
        self._end_comet()

    def fail(self, reason):
        """The end of a run that failed: the folder and Comet say so and why; nothing else is
        reported of the broken network."""
        self._write_status("failed", reason)
        if self.comet is None:
            return
        self.comet.call("add_tag", "failed")
        self.comet.call("log_others", {"status": "failed", "failure": reason})
        self._end_comet()

    def _write_status(self, status, reason=None):
        with open(os.path.join(self.run_dir, "status.json"), "w") as f:
            json.dump({"status": status, "reason": reason, "epochs_logged": len(self.history)}, f)

    def _end_comet(self):
        archives = self.comet.end()
        if archives and not self.comet.online:
            print("Comet: this run is saved offline; upload it with:\n  comet upload %s"
                  % " ".join(archives), file=sys.stderr)


class SilentLog:
    """The log of a worker other than rank 0 in a distributed job: rank 0 reports the job."""

    def log_epoch(self, record, step):
        pass

    def finish(self, confusion, class_names, model_summary, status="finished"):
        pass

    def fail(self, reason):
        pass
