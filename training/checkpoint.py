"""Checkpoints named as MXNet's examples name them: PREFIX-NNNN.* after NNNN epochs. (Exports:
export.py; loading a trained model for prediction or fine-tuning: saved_model.py.)

    PREFIX-0003.params   the network's parameters (net.save_parameters)
    PREFIX-0003.states   the Trainer's state: momentum, update count, schedule (trainer.save_states)
    PREFIX-0003.json     everything else needed to continue (epoch, shuffling RNG, classes,
                         normalisation, config, --amp's loss scale), the format of the files, and the size and md5
                         of the others
    PREFIX-0003.bnstats  the spec'd network's population statistics (training/population.py),
                         added after training or on request (export_model.py)
    PREFIX-0003.recipe   the state of the recipe's hooks (recipes/base.py), e.g. fast94's
                         lookahead average, which a resume continues (.lookahead in checkpoints
                         of fast94 runs written before recipes had a file of their own)

Every file is written under a temporary name and renamed when complete, the .json last: a
checkpoint exists only once all three are in place, and a crash or kill mid-save leaves earlier
checkpoints as they were. Loading checks sizes and checksums, so a damaged file is reported, not
loaded.
"""
import glob
import json
import os
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from common.cli import UserError
from common.files import atomic_write, md5, write_json

from . import precision

FORMAT = 1  # of PREFIX-NNNN.json; a checkpoint of another format is refused on load
RECIPE_STATE = ("recipe", "lookahead")  # the hooks' state file: its name, then an older name of it


class CheckpointError(UserError):
    """A missing, damaged or unsuitable checkpoint. The message says which and what to do."""


def paths(prefix, epoch):
    return {ext: "%s-%04d.%s" % (prefix, epoch, ext) for ext in ("params", "states", "json", "bnstats") + RECIPE_STATE}


def _file_entry(path):
    return {"name": os.path.basename(path), "bytes": os.path.getsize(path), "md5": md5(path)}


def model_meta(dataset, settings):
    """What a checkpoint or an export needs beside the weights: the model, its classes and input,
    the normalisation statistics, and the run's settings (config.recorded_settings)."""
    return {"model": settings["model"], "num_classes": dataset.num_classes,
            "input_size": dataset.test_x.shape[2],
            "class_names": dataset.class_names, "mean": dataset.mean.tolist(),
            "std": dataset.std.tolist(), "config": settings}


def _rng_to_json(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _rng_from_json(saved):
    name, keys, pos, has_gauss, cached = saved
    rng = np.random.RandomState()
    rng.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    return rng


def save(prefix, state, meta):
    """Saves the state after state.epoch epochs under PREFIX-NNNN.*; returns the .json path."""
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    files = paths(prefix, state.epoch)
    with atomic_write(files["params"]) as tmp:
        state.net.save_parameters(tmp)
    with atomic_write(files["states"]) as tmp:
        state.trainer.save_states(tmp)
    saved = ["params", "states"]
    kept = state.hooks.state() if state.hooks is not None else None
    if kept is not None:
        with atomic_write(files["recipe"]) as tmp:
            mx.nd.save(tmp, kept)
        saved.append("recipe")
    record = dict(meta, format=FORMAT, epoch=state.epoch,
                  num_update=state.trainer.optimizer.num_update, rng=_rng_to_json(state.rng),
                  loss_scale=precision.scaler_state(state.trainer),
                  files={ext: _file_entry(files[ext]) for ext in saved})
    write_json(files["json"], record)
    return files["json"]


def latest(prefix):
    """The highest epoch with a complete checkpoint (its .json written last), or None."""
    epochs = []
    for path in glob.glob(glob.escape(prefix) + "-[0-9][0-9][0-9][0-9].json"):
        epochs.append(int(path[-9:-5]))
    return max(epochs, default=None)


def read(prefix, epoch, remedy="resume from another epoch"):
    """The checkpoint's record, after checking its format and that its files are complete and
    unchanged. remedy: what the command that reads it advises when it is damaged."""
    files = paths(prefix, epoch)
    if not os.path.isfile(files["json"]):
        raise CheckpointError("no checkpoint %s-%04d: %s is missing (checkpoints are saved as "
                              "PREFIX-NNNN.* by --model-prefix PREFIX)"
                              % (prefix, epoch, files["json"]))
    try:
        with open(files["json"]) as f:
            record = json.load(f)
        written_format, expected = record.get("format"), record["files"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError("%s is damaged (%s); %s" % (files["json"], e, remedy)) from None
    if written_format != FORMAT:
        raise CheckpointError("%s is a checkpoint of format %s; this code reads format %d: use the "
                              "version of this project that wrote it" % (files["json"], written_format, FORMAT))
    for ext in expected:  # params, states and, once added, bnstats
        path = files[ext]
        if not os.path.isfile(path):
            raise CheckpointError("%s is missing; %s" % (path, remedy))
        size = os.path.getsize(path)
        if size != expected[ext]["bytes"] or md5(path) != expected[ext]["md5"]:
            raise CheckpointError("%s is damaged (%d bytes, expected %d, or its checksum differs); "
                                  "%s" % (path, size, expected[ext]["bytes"], remedy))
    return record


def add_population_statistics(prefix, epoch, statistics):
    """Keeps the population statistics {name: values} with checkpoint PREFIX-NNNN: its .bnstats
    file, then its .json anew with that file's size and md5 (a crash in between leaves the
    checkpoint as it was)."""
    files = paths(prefix, epoch)
    with open(files["json"]) as f:
        record = json.load(f)
    with atomic_write(files["bnstats"]) as tmp:
        mx.nd.save(tmp, {name: mx.nd.array(values) for name, values in statistics.items()})
    record["files"]["bnstats"] = _file_entry(files["bnstats"])
    write_json(files["json"], record)


def population_statistics(prefix, record):
    """The population statistics kept with the checkpoint whose record `read` gave, or None."""
    if "bnstats" not in record["files"]:
        return None
    return {name: values.asnumpy() for name, values in
            mx.nd.load(paths(prefix, record["epoch"])["bnstats"]).items()}


def read_matching(prefix, epoch, model, class_names):
    """The checkpoint's record (read) if it holds this model for these classes."""
    record = read(prefix, epoch)
    if record["model"] != model or record["class_names"] != list(class_names):
        raise CheckpointError(
            "%s-%04d holds %s for classes %s; this run is %s for classes %s (--classes)"
            % (prefix, epoch, record["model"], ",".join(record["class_names"]), model,
               ",".join(class_names)))
    return record


def resume_hint(prefix, epochs_done, epochs, change=""):
    """What to tell a user whose run stopped after epochs_done: the checkpoint to resume from
    (with `change` to the command, e.g. ' and a lower --lr')."""
    message = "%d of %g epochs done." % (epochs_done, epochs)
    saved = latest(prefix) if prefix else None
    if saved is None:
        return message + " No checkpoint was saved (--model-prefix saves them)."
    return message + (" The latest checkpoint is %s-%04d: resume with the same command and "
                      "--resume (--load-epoch %d)%s." % (prefix, saved, saved, change))


def restore(prefix, record, state):
    """Loads parameters, trainer state, shuffling RNG (and the state of the recipe's hooks) of a
    checkpoint into state."""
    files = paths(prefix, record["epoch"])
    try:
        state.net.load_parameters(files["params"], ctx=state.ctx)
    except (mx.base.MXNetError, AssertionError, ValueError) as e:
        raise CheckpointError("%s does not fit this network (%s)" % (files["params"], e)) from None
    state.trainer.load_states(files["states"])
    precision.restore_scaler(state.trainer, record.get("loss_scale"))
    state.rng = _rng_from_json(record["rng"])
    state.epoch = record["epoch"]
    if state.hooks is not None and state.hooks.state() is not None:
        kept = [ext for ext in RECIPE_STATE if ext in record["files"]]
        if not kept:
            raise CheckpointError("%s holds no state of the recipe's hooks (%s), which this run "
                                  "continues; resume from a checkpoint of a run of the same --recipe"
                                  % (files["json"], files["recipe"]))
        state.hooks.load_state(mx.nd.load(files[kept[0]]))


@dataclass
class Saver:
    """Saves every `period` epochs and after the last one.

    Epochs in between are saved to a hidden folder beside the checkpoints, replacing the one
    before, so that an interrupted run can still leave a checkpoint of its last completed epoch
    (publish_pending) without every epoch appearing among the checkpoints.
    """
    prefix: str
    period: int
    meta: dict  # what a later run needs to know: model, classes, normalisation, config
    pending: int = None  # the epoch held in the pending folder, if any

    @property
    def pending_prefix(self):
        folder, name = os.path.split(os.path.abspath(self.prefix))
        return os.path.join(folder, ".pending-" + name, name)

    def after_epoch(self, state, last):
        if state.epoch % self.period == 0 or last:
            save(self.prefix, state, self.meta)
            self._discard_pending()
        else:
            save(self.pending_prefix, state, self.meta)
            self._discard_pending(keep=state.epoch)

    def publish_pending(self):
        """Moves the pending epoch to PREFIX-NNNN (the .json last); returns that epoch or None."""
        if self.pending is None:
            return None
        source, target = paths(self.pending_prefix, self.pending), paths(self.prefix, self.pending)
        with open(source["json"]) as f:
            record = json.load(f)
        for ext in record["files"]:
            os.replace(source[ext], target[ext])
            record["files"][ext]["name"] = os.path.basename(target[ext])
        write_json(target["json"], record)
        self._discard_pending()
        return record["epoch"]

    def _discard_pending(self, keep=None):
        # The pending epoch is switched before any file goes, and the folder is cleared by listing
        # it: an interrupt between two removals must leave publish_pending a complete epoch.
        self.pending = keep
        folder = os.path.dirname(self.pending_prefix)
        if not os.path.isdir(folder):
            return
        kept = {os.path.basename(p) for p in paths(self.pending_prefix, keep).values()} if keep else set()
        for name in os.listdir(folder):
            if name not in kept:
                os.remove(os.path.join(folder, name))
        if keep is None:
            os.rmdir(folder)


def resume_count(record):
    """How many resumes a training that continues from checkpoint `record` has had, this one
    included; 0 for a training that starts afresh (record None)."""
    return record.get("resumes", 0) + 1 if record else 0
