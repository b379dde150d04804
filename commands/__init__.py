"""What the scripts at the top run: each command's flags, usage errors and wiring, with main(argv).

    train_flags  train_cifar10.py's flags, parsed with a recipe's defaults
    train_checks train_cifar10.py's usage errors, all found before any data work
    train        train_cifar10.py: one run, stage by stage (train, evaluate, report, save, export)
    seed_group   train_cifar10.py --seeds: one run per seed, in turn
    child_run    a run another command starts (--seeds, a sweep's trial), and how it is stopped
    predict      predict.py: classify images or a test set with a trained model
    pack_images  pack_images.py: pack an image folder into RecordIO files
    export_model export_model.py: the export of a checkpoint (population statistics on request)
    sweep        sweep.py: Optuna's search of train_cifar10.py's flags, each trial a run; its parts
                 sweep_space (the search space), sweep_study (storage, sampler, pruner, counting),
                 sweep_trial (one trial's run), sweep_results (what the sweep's folder holds)
    launch       launch.py: a job of MXNet's parameter server (scheduler, servers, workers)

All but launch load MXNet when imported, so only common.runtime.start imports them, once the
process is ready (common/runtime.py); launch uses the standard library only.
"""
import os

# What --seeds and sweep.py start, a process per run.
TRAIN_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train_cifar10.py")
