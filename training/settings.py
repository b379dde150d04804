"""The role of every setting of a run (train_cifar10.py's flags, RunConfig's fields, and what a
run records of the machine it ran on), beside deciding what the run trains: one table, ROLES.

    TRAINS    decides what the run trains: runs that differ in it are different configurations
    PER_RUN   names, places or describes one run: runs that differ only in these are one
              configuration (tools.compare_runs groups them), and a resume that changes them
              changes nothing of the training (tracking reports only the others as changed)
    LOCAL     may differ between the machines of one sweep (where the data is, the devices, what
              is shown and reported); sweep.py leaves these and PER_RUN out of a study's plan
and a flag's `sweep`: why sweep.py sets it for each trial itself, or refuses it (in the trials'
flags and in the search space, saying why).

A recipe's fixed flags are the recipe's own (training/recipes/base.py, Recipe.fixed_flags).
Imports nothing, so that tools which never load MXNet can read it.
"""
from dataclasses import dataclass

TRAINS, PER_RUN, LOCAL = "trains", "per run", "machine-local"


@dataclass(frozen=True)
class Role:
    kind: str  # TRAINS, PER_RUN or LOCAL
    sweep: str = None  # why sweep.py sets it for each trial itself; None: a trial may be given it
    flag: bool = True  # a flag of train_cifar10.py (else resolved, or what the run ran on)


def sweep_owned(why):
    """A per-run setting that sweep.py sets for each trial itself."""
    return Role(PER_RUN, sweep=why)


ROLES = {
    # data
    "dataset": Role(TRAINS), "coarse_labels": Role(TRAINS), "classes": Role(TRAINS),
    "image_folder": Role(TRAINS), "rec_prefix": Role(TRAINS),
    "data_dir": Role(LOCAL), "data_url": Role(LOCAL),
    # training
    "epochs": Role(TRAINS), "batch_size": Role(TRAINS), "lr": Role(TRAINS), "momentum": Role(TRAINS),
    "seed": Role(PER_RUN),  # the runs of a seed group differ in it; a resume takes its RNG from the checkpoint
    # not recorded (each run of a seed group has its --seed); a study's plan has always held it
    "seeds": Role(TRAINS, sweep="a trial is one run (vary --seed in the space instead)"),
    # model and recipe
    "recipe": Role(TRAINS), "model": Role(TRAINS), "optimizer": Role(TRAINS), "wd": Role(TRAINS),
    "lr_mode": Role(TRAINS), "lr_factor": Role(TRAINS), "lr_decay_epoch": Role(TRAINS),
    "lr_decay_period": Role(TRAINS), "warmup_epochs": Role(TRAINS), "augment": Role(TRAINS),
    "label_smoothing": Role(TRAINS), "tta_level": Role(TRAINS),
    # devices
    "num_gpus": Role(LOCAL), "gpus": Role(LOCAL), "kv_store": Role(LOCAL),
    "amp": Role(TRAINS), "amp_dtype": Role(TRAINS),
    # checkpoints
    "model_prefix": sweep_owned("each trial keeps its checkpoints in its run folder"),
    "load_epoch": sweep_owned("each trial starts from scratch"),
    "export": sweep_owned("every trial would export to one path; export the best trial with its command"),
    "export_batch_statistics": Role(PER_RUN),
    "save_period": Role(TRAINS), "finetune": Role(TRAINS), "freeze_features": Role(TRAINS),
    # output and tracking
    "log_interval": Role(PER_RUN), "quiet": Role(LOCAL),
    "run_name": sweep_owned("each trial is named STUDY-trial-N"),
    "run_group": sweep_owned("the trials' group is the study"),
    "output_dir": sweep_owned("each trial's run folder is SWEEP_DIR/runs/trial-NNNN"),
    "tags": sweep_owned("each trial is tagged study-STUDY and trial-N"),
    "no_comet": Role(LOCAL), "no_comet_model": Role(PER_RUN),
    "comet_project": Role(PER_RUN), "comet_workspace": Role(PER_RUN),
    # resolved from the flags and the data
    "class_names": Role(TRAINS, flag=False), "classes_tag": Role(TRAINS, flag=False),
    "precision": Role(TRAINS, flag=False),
    # what the run ran on (config.recorded_settings)
    "omp_num_threads": Role(PER_RUN, flag=False), "cpu_model": Role(PER_RUN, flag=False),
    "cpu_cores": Role(PER_RUN, flag=False), "amx": Role(PER_RUN, flag=False),
    "kernels": Role(PER_RUN, flag=False), "mxnet_engine": Role(PER_RUN, flag=False),
}


def named(kind):
    """The settings of that kind."""
    return frozenset(name for name, role in ROLES.items() if role.kind == kind)


PER_RUN_SETTINGS = named(PER_RUN)  # what tracking and compare_runs leave out of a comparison
LOCAL_SETTINGS = named(LOCAL)  # what may differ between the machines of one sweep
SWEEP_OWNS = {name: role.sweep for name, role in ROLES.items() if role.sweep}  # flag destination -> why
