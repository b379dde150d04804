"""RunConfig: every setting of one run, resolved once from the flags and never changed after.

commands/train.py parses and checks the flags, then `resolve` settles what they leave open: the
classes as indices into the data's classes, the run's name, whether this process talks. The
defaults of the flags are the defaults here. `recorded_settings` is what the run folder, Comet,
checkpoints and exports keep of a run.
"""
import os
import platform
import time
from dataclasses import asdict, dataclass
import mxnet as mx
import numpy as np

from common import runtime
from data import parse_classes

from . import precision
from .devices import device_type
from . import recipes


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "cifar10"  # a CIFAR release (data.LAYOUTS), unless image_folder or rec_prefix
    coarse_labels: bool = False  # CIFAR-100's 20 superclasses
    data_dir: str = None  # None: $MXNET_HOME/datasets/DATASET
    data_url: str = None  # None: the official URL
    classes: tuple = ()  # indices into the data's classes, trained as 0..k-1 in this order
    image_folder: str = None
    rec_prefix: str = None
    # training
    epochs: float = 5  # passes over the training set; a fraction ends within the last one
    batch_size: int = 128  # images per update and worker, split across its devices
    lr: float = 0.1  # after any warmup
    momentum: float = 0.9
    seed: int = 42
    # model and recipe
    recipe: str = recipes.DEFAULT  # training/recipes/: a recipe's flag_defaults replace these defaults
    model: str = "spec-resnet"  # the model's one name (models.canonical_name)
    optimizer: str = "sgd"  # or 'nag'
    wd: float = 0.0
    lr_mode: str = "linear"  # 'linear', 'step' or 'constant'
    lr_factor: float = 0.1  # step mode
    lr_decay_epoch: tuple = ()  # step mode: epochs at whose start the rate is multiplied
    lr_decay_period: int = 0  # step mode: every N epochs
    warmup_epochs: int = 0
    augment: bool = False
    label_smoothing: float = 0.0
    tta_level: int = 0  # test-time augmentation of the last evaluation and of predictions (training/tta.py)
    # devices
    num_gpus: int = 0  # GPUs 0..N-1
    gpus: tuple = None  # or these GPU ids (--gpus 0,2)
    kv_store: str = "device"
    amp: bool = False  # mixed precision (training/precision.py)
    amp_dtype: str = None  # None: float16 on GPUs, bfloat16 on CPUs
    # checkpoints
    model_prefix: str = None
    save_period: int = 1  # epochs
    load_epoch: int = None
    finetune: str = None
    freeze_features: bool = False
    export: str = None
    export_batch_statistics: bool = False  # export the spec'd network as trained, not its population form
    # output and tracking
    log_interval: int = None  # batches
    quiet: bool = False
    run_name: str = None
    run_group: str = None  # runs that belong together (the seeds of one configuration)
    output_dir: str = None  # None: runs/RUN_NAME
    tags: tuple = ()  # more Comet tags (sweep.py's study-NAME, trial-N)
    no_comet: bool = False
    comet_project: str = None  # None: COMET_PROJECT_NAME or the Comet config file's, else tracking's default
    comet_workspace: str = None  # None: comet_ml's own setting
    no_comet_model: bool = False  # do not log the export to Comet as a model
    # resolved from the data
    class_names: tuple = ()  # of the classes trained, in their order
    classes_tag: str = "all"  # 'all' or the indices joined by '-', in names and tags
    precision: str = "float32"  # what the network computes in: float32, float16 or bfloat16 (--amp)


def resolve(flags, source, chief=True):
    """The RunConfig of parsed flags (an argparse Namespace) for a DataSource. chief: whether
    this process reports (rank 0); the others are quiet. Raises ValueError for --classes."""
    classes = parse_classes(flags.classes, source.class_names)
    tag = "all" if classes == list(range(len(source.class_names))) else "-".join(map(str, classes))
    run_name = flags.run_name or "%s_c%s_%s" % (flags.model, tag, time.strftime("%Y%m%d-%H%M%S"))
    given = {k: v for k, v in vars(flags).items() if k != "seeds"}  # each run of a seed group has one --seed
    settings = dict(given, classes=tuple(classes), lr_decay_epoch=tuple(flags.lr_decay_epoch),
                    tags=tuple(flags.tags),
                    gpus=tuple(flags.gpus) if flags.gpus else None,
                    quiet=flags.quiet or not chief, run_name=run_name,
                    class_names=tuple(source.class_names[c] for c in classes), classes_tag=tag,
                    precision=precision.choose(flags.amp, flags.amp_dtype,
                                               device_type(flags.num_gpus, flags.gpus)))
    return RunConfig(**settings)


def schedule_name(config):
    return recipes.get(config.recipe).schedule_name(config)


def recorded_settings(config, dataset, ctx, worker, source_name):
    """Every effective setting of the run, and what it ran on (the CPU, whether its AMX was used,
    the kernels its precision ran on; never any secret), as JSON values:
    the run folder's config.json, Comet's parameters, and the `config` of checkpoints and exports."""
    values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
              if k != "quiet"}
    device = "gpu" if ctx[0].device_type == "gpu" else "cpu"
    setup = runtime.setup()
    values.update({
        "dataset": source_name,
        "class_names": dataset.class_names, "num_classes": dataset.num_classes,
        "train_images": dataset.train_x.shape[0], "test_images": dataset.test_x.shape[0],
        "nesterov": config.optimizer in ("nag", "nesterovsgd"), "weight_decay": config.wd,
        "lr_schedule": schedule_name(config),
        "device": device, "contexts": [str(c) for c in ctx],
        "num_devices": len(ctx), "num_workers": worker.num_workers,
        "global_batch_size": config.batch_size * worker.workers_per_update,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "mean": dataset.mean.tolist(), "std": dataset.std.tolist(),
        "version_mxnet": mx.__version__, "version_gluoncv": runtime.installed_version("gluoncv"),
        "version_numpy": np.__version__, "version_comet_ml": runtime.installed_version("comet_ml"),
        "version_python": platform.python_version(), "host_cpu": platform.machine(),
        # what it computed on: dashboards compare runs of one CPU, and of one path of its precision
        "cpu_model": setup.cpu.name, "cpu_cores": setup.cpu.cores,
        "amx": setup.amx.status + (": " + setup.amx.reason if setup.amx.reason else ""),
        "kernels": precision.kernels(config.precision, device), "mxnet_engine": setup.engine,
    })
    return values
