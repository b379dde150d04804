"""The one table of setting roles (training/settings.py): every RunConfig field and every flag of
train_cifar10.py has a row, and the code that compares runs, resumes and sweeps reads it."""
import dataclasses

from commands import sweep_space, train_flags
from training import settings
from training.config import RunConfig


def flag_destinations():
    return {action.dest for action in train_flags.build_parser()._actions if action.dest != "help"}


def test_every_runconfig_field_and_every_flag_has_a_role():
    fields = {field.name for field in dataclasses.fields(RunConfig)}
    flags = flag_destinations()
    assert fields - set(settings.ROLES) == set()
    assert flags - set(settings.ROLES) == set()
    for name, role in settings.ROLES.items():
        assert role.kind in (settings.TRAINS, settings.PER_RUN, settings.LOCAL), name
        assert (name in flags) == role.flag, name  # a row says whether it is a flag


def test_the_sweep_refuses_exactly_the_flags_the_table_gives_it():
    owned = {"--" + dest.replace("_", "-") for dest, role in settings.ROLES.items() if role.sweep}
    assert set(sweep_space.SWEEP_OWNS) == owned
    for flag in owned:
        try:
            sweep_space.check_training([flag, {"--seeds": "1,2", "--load-epoch": "1"}.get(flag, "x")])
        except sweep_space.SpaceError as e:
            assert str(e) == "%s cannot be given to the trials: %s" % (flag, sweep_space.SWEEP_OWNS[flag])
        else:
            raise AssertionError("%s was taken" % flag)
