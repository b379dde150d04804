"""Comet.ml for a run or a sweep: an experiment whose every call is guarded (CometRun), so that
Comet never stops training. With an API key (COMET_API_KEY or a Comet config file) it goes online;
without one, or when the online experiment cannot start or fails later, it is written as an
offline archive and the `comet upload` command is printed at the end. A resumed training continues
the checkpoint's experiment, online or, failing that, as an offline archive that uploads into it.
comet_ml is imported only when Comet is used.
"""
import glob
import os
import sys
from dataclasses import dataclass

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


@dataclass
class Plan:
    """What an experiment is opened with."""
    name: str  # the experiment's name (a new one)
    project: str  # --comet-project, or None
    workspace: str  # --comet-workspace, or None
    archive_dir: str  # where offline archives go
    params: dict  # its parameters (a new one)
    tags: list
    resume: dict = None  # tracking.resume_record's: the experiment to continue, and how


def comet_disabled(no_comet_flag):
    return no_comet_flag or os.environ.get("COMET_DISABLE", "").lower() in ("1", "true", "yes")


def as_comet_value(value):
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
    def open(cls, plan):
        """The experiment of a Plan, or None where comet_ml's own switch (COMET_AUTO_LOG_DISABLE)
        turns Comet off."""
        for key, value in COMET_FAST_FAIL.items():
            os.environ.setdefault(key, value)
        import comet_ml

        config = comet_ml.get_config()
        if config["comet.auto_log.disable"]:  # comet_ml's documented "disabled": no Comet at all
            print("Comet: disabled by your Comet settings (COMET_AUTO_LOG_DISABLE, or disable in the "
                  "config file's [comet_auto_log]); the run folder keeps the record", file=sys.stderr)
            return None
        return cls(comet_ml, config, plan)

    def __init__(self, comet_ml, config, plan):
        self.comet_ml = comet_ml
        self.archive_dir = plan.archive_dir
        # A flag when given, else COMET_PROJECT_NAME / the config file, else this project's default;
        # the workspace is left to comet_ml's settings when no flag gives it.
        self.project = plan.project or config["comet.project_name"] or DEFAULT_COMET_PROJECT
        self.workspace = plan.workspace
        resume, tags = plan.resume, plan.tags
        self.options = {argument: value for key, (argument, value) in COMET_DEFAULTS.items()
                        if config[key] is None}
        self.key = resume["experiment_key"] if resume else None  # the experiment to continue
        self.replay = [("add_tags", (tags,), {})]
        if self.key is None:  # a new experiment: its name and settings
            self.replay += [("set_name", (plan.name,), {}),
                            ("log_parameters", (dict(plan.params, comet_project=self.project),), {})]
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
