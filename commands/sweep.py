"""sweep.py: the best training flags, searched with Optuna; every trial a train_cifar10.py run of
its own (run folder, Comet experiment), the study kept in a database so that a stopped sweep
continues and several machines share one.

    python sweep.py --trials 12 -- --classes 0,1 --epochs 3
    python sweep.py --trials 40 --space space.yaml --pruner hyperband -- --epochs 10 --augment
    python sweep.py --trials 40 --study wide --storage postgresql://USER:PASSWORD@HOST/DB -- ...

    flags -> training flags and search space checked -> study opened (all before any trial)
    -> trials until the study has --trials -> the sweep folder's table, best command, plots,
    and the study's Comet experiment

The search space: sweep_space.py; storage, sampler, pruner and counting: sweep_study.py; one
trial: sweep_trial.py; what the folder holds: sweep_results.py. One JSON line per ended trial on
stdout, messages on stderr; a usage error is one line and exit code 2, before any trial runs.
"""
import functools
import json
import os
import re
import sys
import warnings

from common import interrupts
from common.cli import EXIT_INTERRUPTED, ArgumentParser, UserError, command, non_negative_int, positive_int
from training import comet, metrics
from training.settings import LOCAL_SETTINGS, PER_RUN_SETTINGS

SETUP = "pip install -r requirements-sweep.txt (./train.sh and ./test.sh install it)"


def add_search_args(parser):
    group = parser.add_argument_group("search")
    group.add_argument("--trials", type=positive_int, required=True, metavar="N",
                       help="trials the study should have: a restart, and every machine on the study, "
                            "counts those it has (a trial interrupted, or lost with its machine, is "
                            "run again)")
    group.add_argument("--space", default=None, metavar="FILE",
                       help="the search space, JSON or YAML: train_cifar10.py flags with their "
                            "distributions (docs/sweeps.md); None: --lr log-uniform 0.02-0.5, "
                            "--batch-size 64|128|256, --momentum 0.8-0.95, --wd log-uniform 1e-5-1e-3")
    group.add_argument("--sampler", default="tpe", choices=("tpe", "random", "grid"),
                       help="Optuna's sampler; grid: every combination of the space's listed values "
                            "(or steps), in random order, at most once each")
    group.add_argument("--sampler-seed", type=int, default=None, metavar="SEED",
                       help="seeds the sampler (None: a fresh one; give each machine of a study its own)")
    group.add_argument("--metric", default="test_acc", choices=metrics.LOGGED,
                       help="the JSON-line value a trial is scored by: its last one")
    group.add_argument("--direction", default=None, choices=("maximize", "minimize"),
                       help="None: maximize accuracies and images_per_sec, minimize the others")


def add_pruning_args(parser):
    group = parser.add_argument_group("pruning", "a pruned trial's run stops as Ctrl-C stops it: its "
                                      "folder and last checkpoint are kept, its status is `pruned`")
    group.add_argument("--pruner", default="median", choices=("median", "hyperband", "none"),
                       help="median: stop a trial whose metric is worse than the median of earlier "
                            "trials at the same epoch; hyperband: Optuna's successive halving")
    group.add_argument("--prune-startup-trials", type=non_negative_int, default=5, metavar="N",
                       help="median: trials that run to the end before any is pruned")
    group.add_argument("--prune-warmup-epochs", type=non_negative_int, default=1, metavar="E",
                       help="epochs every trial trains before it may be pruned (hyperband: its "
                            "least resource, at least 1)")


def add_study_args(parser):
    group = parser.add_argument_group("study")
    group.add_argument("--study", default=None, metavar="NAME",
                       help="the study's name (the same command continues it); None: the training "
                            "flags' model and classes, e.g. spec-resnet_c0-1")
    group.add_argument("--storage", default=None, metavar="URL",
                       help="where the study is kept: an Optuna database URL; "
                            "postgresql://USER:PASSWORD@HOST/DB lets several machines work on one "
                            "study; None: sqlite:///SWEEP_DIR/study.db")
    group.add_argument("--sweep-dir", default=None,
                       help="the sweep's folder (trial run folders, table, plots); None: sweeps/NAME")
    group.add_argument("--heartbeat", type=positive_int, default=60, metavar="SECONDS",
                       help="how often a running trial says it is alive; a trial silent for twice "
                            "as long is failed and run again by the next worker")
    group.add_argument("--quiet", action="store_true", help="no messages of the sweep on stderr")


def build_parser():
    parser = ArgumentParser("Search train_cifar10.py's flags with Optuna: python sweep.py --trials N "
                            "[options] -- [train_cifar10.py flags shared by every trial]")
    add_search_args(parser)
    add_pruning_args(parser)
    add_study_args(parser)
    return parser


def split(argv):
    """(the sweep's arguments, the training flags after --)."""
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def require_optuna():
    if sys.version_info < (3, 9):
        raise UserError("sweep.py needs Optuna 5, which needs Python 3.9 or newer; this is Python "
                        "%d.%d: run the sweep with Python 3.9-3.11" % sys.version_info[:2])
    try:
        import optuna
    except ImportError as e:
        raise UserError("sweep.py needs Optuna (%s): %s" % (e, SETUP))
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep says what happens itself
    # Heartbeats, their retries and the matplotlib plots are "experimental" since Optuna 2.8-2.9
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@command
def main(argv=None):
    ours, train_args = split(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    args = parser.parse_args(ours)
    require_optuna()
    sweep, study, settings = open_sweep(args, train_args, parser)
    try:
        ran = run_trials(study, sweep, target(args, sweep))
    except KeyboardInterrupt as e:
        report(study, sweep, settings)
        print(interrupts.message(e, "the study keeps every ended trial; the same command continues it "
                                    "(the interrupted trial runs again)"), file=sys.stderr)
        return EXIT_INTERRUPTED
    except UserError:
        report(study, sweep, settings)
        raise
    sweep.say("this worker ran %d trial%s" % (ran, "" if ran == 1 else "s"))
    report(study, sweep, settings)
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        raise UserError("no trial of study %s completed (%s says how each ended)"
                        % (sweep.study_name, os.path.join(sweep.folder, "trials.csv")))
    return 0


def open_sweep(args, train_args, parser):
    """(Sweep, the Optuna study, the sweep's settings as its Comet experiment keeps them): every
    flag, the space and the storage checked, before any trial runs. A usage error exits."""
    from . import sweep_space, sweep_study, sweep_trial

    try:
        flags = sweep_space.check_training(train_args)
        space, params = sweep_space.load(args.space, train_args)
        sampler = sweep_study.make_sampler(args.sampler, args.sampler_seed, params)
    except sweep_space.SpaceError as e:
        parser.error(str(e))
    if args.metric == "tta_test_acc" and not flags.tta_level:
        parser.error("--metric tta_test_acc needs --tta-level 1 or 2 in the training flags")
    direction = args.direction or ("maximize" if metrics.BY_NAME[args.metric].higher_is_better else "minimize")
    name = args.study or re.sub(r"[^A-Za-z0-9_.-]+", "-", "%s_c%s" % (flags.model, flags.classes))
    folder = args.sweep_dir or os.path.join("sweeps", name)
    if args.storage is None:
        os.makedirs(folder, exist_ok=True)
    url = args.storage or "sqlite:///" + os.path.abspath(os.path.join(folder, "study.db"))
    storage = sweep_study.open_storage(url, args.heartbeat)
    os.makedirs(folder, exist_ok=True)
    training = {k: v for k, v in sorted(vars(flags).items()) if k not in PER_RUN_SETTINGS | LOCAL_SETTINGS}
    plan = {"training": training, "space": space, "metric": args.metric, "direction": direction}
    study = sweep_study.open_study(name, storage, direction, sampler,
                                   sweep_study.make_pruner(args.pruner, args.prune_startup_trials,
                                                           args.prune_warmup_epochs), plan)
    sweep = sweep_trial.Sweep(name, folder, train_args, params, args.metric, quiet=args.quiet,
                              comet_project=flags.comet_project, comet_workspace=flags.comet_workspace,
                              no_comet=flags.no_comet)
    sweep.say("%s %s of %s in %s; trials' flags beyond: %s" % (
        "continuing" if len(study.trials) else "starting", direction, args.metric,
        sweep_study.shown(url), " ".join(train_args) or "(defaults)"))
    settings = {"study": name, "storage": sweep_study.shown(url), "sampler": args.sampler,
                "pruner": args.pruner, "metric": args.metric, "direction": direction, "trials": args.trials,
                "training_flags": " ".join(train_args), "space": json.dumps(space, sort_keys=True)}
    return sweep, study, settings


def target(args, sweep):
    """--trials, or a grid's size when that is smaller."""
    if args.sampler != "grid":
        return args.trials
    size = 1
    for param in sweep.params:
        size *= len(param.grid())
    if size < args.trials:
        sweep.say("the grid has %d points: %d trials, not %d" % (size, size, args.trials))
    return min(size, args.trials)


def run_trials(study, sweep, wanted):
    """Runs trials until the study has `wanted`; returns how many this worker ran."""
    from . import sweep_results, sweep_study, sweep_trial

    again = sweep_study.requeue_interrupted(study)
    if again:
        sweep.say("trial%s %s stopped unfinished: run again first" % (
            "" if len(again) == 1 else "s", ", ".join(map(str, again))))
    ran = 0
    objective = functools.partial(sweep_trial.objective, sweep=sweep)
    callbacks = [functools.partial(sweep_results.after_trial, sweep=sweep)]
    while sweep_study.remaining(study, wanted) > 0:
        study.optimize(objective, n_trials=1, catch=(sweep_trial.TrialFailed,), callbacks=callbacks)
        ran += 1
    return ran


def report(study, sweep, settings):
    """The sweep folder's files, the study's Comet experiment, and the lines that say where."""
    from . import sweep_results

    command_line, files = sweep_results.write(study, sweep)
    archives = []
    if not comet.comet_disabled(sweep.no_comet):
        archives = sweep_results.log_study(study, sweep, settings, files)
    sweep.say(sweep_results.summary(study, sweep, settings["trials"]))
    sweep_results.say_files(sweep, command_line, files, archives)
