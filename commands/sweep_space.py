"""sweep.py's search space: which train_cifar10.py flags a trial varies, and how. The default
space, or a --space file (JSON, or YAML by its .yaml/.yml name) that maps flags to distributions:

    lr:         {type: float, low: 0.02, high: 0.5, log: true}   # log-uniform
    momentum:   {type: float, low: 0.8, high: 0.95}              # uniform
    wd:         {type: float, low: 0, high: 0.001}               # 0 allowed (not log-uniform)
    epochs:     {type: int, low: 3, high: 9, step: 3}
    batch-size: [64, 128, 256]                                   # a list: one of these values
    augment:    [true, false]                                    # a switch: given or not

A flag's `--` is optional. Every value the space can give (each end of a range, each listed
value) is parsed with the sweep's training flags by train_cifar10.py's own parser and checks
before any trial runs, so a flag or value a run would refuse is one error line here, not a
failed trial later.
"""
import argparse
import json
import shlex
from dataclasses import dataclass

import optuna

from common.cli import ArgumentParser
from training import settings

from . import train_flags

# For the defaults' network and recipe (the spec's); --lr and --wd per update, --batch-size per
# update and worker.
DEFAULT_SPACE = {
    "lr": {"type": "float", "low": 0.02, "high": 0.5, "log": True},
    "batch-size": [64, 128, 256],
    "momentum": {"type": "float", "low": 0.8, "high": 0.95},
    "wd": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
}
# Each trial's own, set by the sweep (its run folder, names, tags, checkpoints), or a run of
# their own: flag -> what it would do to every trial alike (training/settings.py's table).
SWEEP_OWNS = {"--" + dest.replace("_", "-"): why for dest, why in settings.SWEEP_OWNS.items()}
KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}}


class SpaceError(ValueError):
    """A search space that cannot be swept; the message names the flag and what is wrong."""


@dataclass
class Param:
    """One flag the trials vary."""
    flag: str  # '--lr'
    distribution: object  # an optuna distribution
    switch: bool = False  # a flag without a value (store_true): True gives it, False leaves it out

    @property
    def name(self):  # as Optuna, the trials table and the plots name it
        return self.flag[2:]

    def suggest(self, trial):
        """The trial's value, asked of the sampler."""
        d = self.distribution
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            return trial.suggest_categorical(self.name, d.choices)
        suggest = trial.suggest_int if isinstance(d, optuna.distributions.IntDistribution) else trial.suggest_float
        return suggest(self.name, d.low, d.high, step=d.step, log=d.log)

    def args(self, value):
        """The train_cifar10.py arguments that give this value."""
        if self.switch:
            return [self.flag] if value else []
        return [self.flag, repr(value) if isinstance(value, float) else str(value)]

    def ends(self):
        """The values to check: a range's two ends, or every listed value."""
        d = self.distribution
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            return list(d.choices)
        return [d.low, d.high]

    def grid(self):
        """Every value of a grid over this flag: the listed ones, or a range's steps."""
        d = self.distribution
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            return list(d.choices)
        if d.step is None:
            raise SpaceError("--sampler grid needs a list of values or a step for every flag; %s "
                             "is a range without a step" % self.flag)
        count = int(round((d.high - d.low) / d.step)) + 1
        return [type(d.low)(d.low + i * d.step) for i in range(count)]


def read(path):
    """The space file's mapping {flag: distribution}; SpaceError if it cannot be read as one."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise SpaceError("cannot read %s (%s)" % (path, e.strerror or e))
    in_yaml = path.endswith((".yaml", ".yml"))
    try:
        if in_yaml:
            import yaml

            space = yaml.safe_load(text)
        else:
            space = json.loads(text)
    except Exception as e:  # noqa: BLE001 - json's and yaml's errors both say where
        raise SpaceError("%s is not valid %s (%s)" % (path, "YAML" if in_yaml else "JSON", " ".join(str(e).split())))
    if not isinstance(space, dict) or not space:
        raise SpaceError("%s must map flags to distributions, e.g. {\"lr\": {\"type\": \"float\", "
                         "\"low\": 0.01, \"high\": 0.5, \"log\": true}}" % path)
    return space


def build(space, train_args):
    """[Param] of a space mapping, checked against train_cifar10.py's flags (the sweep's own
    train_args beside each value); SpaceError names the first problem."""
    actions = train_flags.build_parser()._option_string_actions
    params = []
    for key, value in space.items():
        flag = "--" + str(key).lstrip("-")
        if flag not in actions or flag in ("--help", "-h"):
            raise SpaceError("%s is not a train_cifar10.py flag (python train_cifar10.py --help lists them)" % flag)
        if flag in SWEEP_OWNS:
            raise SpaceError("%s cannot be swept: %s" % (flag, SWEEP_OWNS[flag]))
        if given(flag, train_args):
            raise SpaceError("%s is both in the training flags after -- and in the search space: "
                             "give it in one of them" % flag)
        switch = isinstance(actions[flag], argparse._StoreTrueAction)
        param = Param(flag, distribution(flag, value, switch), switch)
        for end in param.ends():
            check_train_args(train_args + param.args(end), "%s %s" % (flag, end))
        params.append(param)
    return params


def distribution(flag, value, switch):
    """The optuna distribution a space entry describes; SpaceError if it is not a possible one."""
    if isinstance(value, list):
        value = {"type": "categorical", "choices": value}
    if not isinstance(value, dict) or value.get("type") not in ("float", "int", "categorical"):
        raise SpaceError("%s: expected a list of values or {\"type\": \"float\"|\"int\"|\"categorical\", "
                         "...}, got %s" % (flag, json.dumps(value)))
    kind = value["type"]
    rest = {k: v for k, v in value.items() if k != "type"}
    if switch and (kind != "categorical" or any(not isinstance(c, bool) for c in rest.get("choices", [None]))):
        raise SpaceError("%s is a switch: give it as [true, false]" % flag)
    try:
        if kind == "categorical":
            if set(rest) != {"choices"} or not isinstance(rest["choices"], list) or not rest["choices"]:
                raise ValueError("a list of values needs at least one value")
            return optuna.distributions.CategoricalDistribution(rest["choices"])
        unknown = set(rest) - KEYS[kind]
        if unknown or not {"low", "high"} <= set(rest):
            raise ValueError("a %s range takes low, high and optionally log or step (got %s)"
                             % (kind, ", ".join(sorted(rest)) or "nothing"))
        if not all(isinstance(rest[k], (int, float)) and not isinstance(rest[k], bool)
                   for k in ("low", "high") + (("step",) if rest.get("step") is not None else ())):
            raise ValueError("low, high and step must be numbers")
        if kind == "int":
            return optuna.distributions.IntDistribution(
                rest["low"], rest["high"], log=bool(rest.get("log", False)), step=rest.get("step", 1))
        return optuna.distributions.FloatDistribution(
            rest["low"], rest["high"], log=bool(rest.get("log", False)), step=rest.get("step"))
    except (ValueError, TypeError) as e:  # optuna's own checks: low <= high, log above 0, ...
        raise SpaceError("%s: impossible distribution (%s)" % (flag, e))


def given(flag, argv):
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def check_training(train_args):
    """The flags after --, parsed and checked as a run would (check_train_args), and none that
    the sweep sets for each trial itself; SpaceError otherwise."""
    for flag, why in SWEEP_OWNS.items():
        if given(flag, train_args):
            raise SpaceError("%s cannot be given to the trials: %s" % (flag, why))
    return check_train_args(train_args)


class _Refused(Exception):
    pass


class _CheckingParser(ArgumentParser):
    """train_cifar10.py's parser, whose usage error is raised rather than said."""

    def error(self, message):
        raise _Refused(message)


def check_train_args(argv, what="the training flags after --"):
    """train_cifar10.py's flags as a trial would be given them, parsed and checked as the run
    would (without opening devices or data); SpaceError with its usage error otherwise."""
    try:
        return train_flags.parse(list(argv), _CheckingParser)[1]
    except _Refused as e:
        raise SpaceError("%s: train_cifar10.py would refuse %s: %s" % (what, shlex.join(argv), e))


def load(path, train_args):
    """(the space mapping, [Param]) of the --space file (None: the default space)."""
    space = DEFAULT_SPACE if path is None else read(path)
    return space, build(space, train_args)
