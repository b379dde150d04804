"""The parts of a training run, below the commands that wire them together (commands/).

    config        RunConfig: the settings of one run, resolved once from the flags
    settings      every setting's role: what it trains, per run, machine-local, a sweep's own
    devices       the contexts (CPU or GPUs) this process computes on
    distributed   where this process stands in a job: kvstore, rank, its shard of the data
    schedules     learning-rate schedules, functions of the update count alone
    recipes/      the recipes (--recipe), one module each: base (the interface), spec, fast94
    lookahead     lookahead weight averaging (fast94's hooks)
    losses        a run's loss: the label-smoothed cross-entropy, or Gluon's
    metrics       the values an epoch reports, one table
    comet         the run's (or a sweep's) guarded Comet experiment
    precision     mixed precision (--amp): bfloat16 on CPUs, float16 on GPUs
    tta           test-time augmentation, for training's last evaluation and for prediction
    trainer       a run's Trainer and LR schedule, the batches of an epoch and of the run
    state         TrainState: the network, its Trainer and what one epoch hands the next
    loop          train_one_epoch, evaluate, fit, the confusion matrix, the interval report
    checkpoint    checkpoints: what they hold, saving, checking, resuming
    population    the spec'd network's population statistics and the form that uses them
    export        writing a trained network for deployment: MXNet's files and ONNX
    saved_model   reading a trained model: what a path names, loading for prediction and
                  fine-tuning
    tracking      where a run is reported: stdout, its run folder, Comet.ml
    plots         the pictures: a run's curves and confusion matrix, runs and groups side by side

Importing the package, or any of its modules, changes nothing in the process: a script makes
the process ready before MXNet loads (common/runtime.py).
"""
