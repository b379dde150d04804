"""--seeds: the same configuration once per seed, each run a train_cifar10.py process of its own
(as if typed by hand with --seed), all in one --run-group."""
import os
import sys
import time

from . import child_run


def without_seeds(argv):
    """argv without its --seeds flag (as '--seeds 1,2' or '--seeds=1,2')."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--seeds":
            skip = True
        elif not arg.startswith("--seeds="):
            rest.append(arg)
    return rest


def seed_run_args(args, group, seed):
    """The flags that make one run of the group: its seed, group and name, and its own folder,
    checkpoints and export (argparse takes the last of a repeated flag)."""
    extra = ["--seed", str(seed), "--run-group", group, "--run-name", "%s-seed%d" % (group, seed)]
    for flag, value in (("--output-dir", args.output_dir), ("--model-prefix", args.model_prefix),
                        ("--export", args.export)):
        if value:
            extra += [flag, "%s-seed%d" % (value, seed)]
    return extra


def run_seeds(args, argv):
    """Runs the configuration once per seed of --seeds, in turn; stops at the first run that does
    not finish. Returns its exit code."""
    group = args.run_group or args.run_name or "%s_seeds_%s" % (args.model, time.strftime("%Y%m%d-%H%M%S"))
    common = without_seeds(sys.argv[1:] if argv is None else argv)
    for n, seed in enumerate(args.seeds, 1):
        if not args.quiet:
            print("seed group %s: seed %d (%d of %d)" % (group, seed, n, len(args.seeds)),
                  file=sys.stderr, flush=True)
        child = child_run.start(common + seed_run_args(args, group, seed))
        try:
            code = child.wait()
        except KeyboardInterrupt as e:
            code = child_run.stop(child, e)  # the run saves what it can and says so
        if code != 0:
            print("seed group %s: the run of seed %d ended with exit code %d; the seeds after it "
                  "did not run" % (group, seed, code), file=sys.stderr)
            return code
    if not args.quiet:
        folders = (args.output_dir or os.path.join("runs", group)) + "-seed*"
        print("seed group %s: %d runs; compare them with: python -m tools.compare_runs %s"
              % (group, len(args.seeds), folders), file=sys.stderr)
    return 0
