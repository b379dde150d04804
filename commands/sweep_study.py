"""sweep.py's Optuna study: where it is kept, how it samples and prunes, and how many trials it
still needs.

Storage: a SQLite file in the sweep's folder by default, or any database URL Optuna takes
(postgresql://USER:PASSWORD@HOST/DB for several machines on one study). Every worker beats a
heartbeat while its trial runs; a trial whose worker stopped beating (killed, machine lost) is
marked failed by the next worker that looks, and run again once with the same flags (Optuna's
RetryHeartbeatStaleTrialCallback). A URL is only ever shown with its password hidden.

A trial's `outcome` (a user attribute the sweep keeps) says how its run ended: finished, pruned,
diverged, killed, failed (exit N), interrupted (the sweep was stopped), or running. --trials
counts every trial but those that did not get to end on their own (interrupted, or lost with
their worker): those are run again.
"""
import time

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from common.cli import UserError

RETRIES = 1  # times a trial lost with its worker is run again
CONNECT_TIMEOUT = 10  # seconds, to a database server
SCHEMA_RACES = 3  # times a new database's tables are looked for again when another worker made them
NOT_ENDED = ("interrupted", "running")  # outcomes of failed trials that are run again


class StorageError(UserError):
    """A storage URL that cannot be opened; the message never holds the password."""


def shown(url):
    """The URL with its password hidden (postgresql://user:***@host/db)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: show its scheme only
        return url.split(":", 1)[0] + ":..." if ":" in url else "(not a URL)"


def open_storage(url, heartbeat):
    """The RDBStorage at url, with heartbeats every `heartbeat` seconds (a trial is lost after
    two missed) and lost trials retried; StorageError if it cannot be opened."""
    from sqlalchemy.exc import IntegrityError

    engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}} if url.startswith("postgresql") else {}
    for attempt in range(SCHEMA_RACES + 1):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=RETRIES))
        except IntegrityError:  # workers started together on a new database: another made the tables
            if attempt == SCHEMA_RACES:
                raise StorageError("--storage %s: its tables could not be made" % shown(url))
            time.sleep(1)
        except Exception as e:  # noqa: BLE001 - SQLAlchemy's, the driver's or Optuna's, all one line
            reason = " ".join(str(e).split())
            password = _password(url)
            if password:
                reason = reason.replace(password, "***")
            raise StorageError("--storage %s cannot be opened: %s" % (shown(url), reason[:300]))


def _password(url):
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password
    except Exception:  # noqa: BLE001
        return None


def make_sampler(name, seed, params):
    """tpe, random, or grid over params' values (SpaceError from a param without a grid)."""
    if name == "grid":
        return optuna.samplers.GridSampler({p.name: p.grid() for p in params}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name, startup_trials, warmup_epochs):
    """median, hyperband or none; steps are epochs done."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(warmup_epochs, 1))
    return optuna.pruners.NopPruner()


def open_study(name, storage, direction, sampler, pruner, plan):
    """The study `name` in storage, created if new. plan: what makes its trials comparable (the
    training flags, the space, the metric and its direction), kept with a new study and checked
    against an existing one: UserError if they differ."""
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    kept = study.user_attrs.get("plan")
    if kept is None:
        study.set_user_attr("plan", plan)
    elif kept != plan:
        changed = ", ".join(k for k in plan if kept.get(k) != plan[k])
        raise UserError("study %s was started with other settings (%s differ): run it with the same "
                        "ones to continue it, or give another --study" % (name, changed))
    return study


def counted(trial):
    """Whether a trial counts towards --trials: it ended on its own, or is running."""
    if trial.state == TrialState.FAIL:
        return trial.user_attrs.get("outcome") not in NOT_ENDED
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def remaining(study, target):
    """How many more trials the study needs to reach `target`, after marking the trials of
    workers that stopped beating as failed (and queueing their retries)."""
    optuna.storages.fail_stale_trials(study)
    return target - sum(counted(t) for t in study.get_trials(deepcopy=False))


def requeue_interrupted(study):
    """Queues once more, with the same flags, each trial that a stopped sweep left unfinished
    (those lost with their worker are Optuna's to retry); returns their numbers."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    again = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("outcome") == "interrupted"
             and t.number not in retried]
    for t in again:
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    return [t.number for t in again]
