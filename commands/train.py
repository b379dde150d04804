"""train_cifar10.py: one training run, stage by stage, from the checked flags to the report of
its end. Its flags and their usage errors: train_flags.py; --seeds: seed_group.py.

    flags -> devices and worker -> RunConfig and data source -> (checkpoint to resume) -> data
    -> network and Trainer -> run folder, Comet, checkpoints (a Run) -> fit -> population form,
    export, report

One JSON line per epoch on stdout, messages on stderr. Every stop is one line: a user error
(exit 1, cli.command), a diverged loss (exit 3), Ctrl-C or SIGTERM at any stage (exit 130:
status.json says `interrupted`, or `pruned` for sweep.py's SIGUSR1, once the run folder exists,
Comet is ended, the last completed epoch is published as a checkpoint with --model-prefix).
"""
import os
import sys
from dataclasses import dataclass

import models
from commands import seed_group, train_flags
from common import interrupts
from common.cli import EXIT_DIVERGED, EXIT_INTERRUPTED, USER_ERRORS, command, report_export, say
from data import Dataset, open_source, prepare
from training import checkpoint, config as run_config, distributed, population, precision, tracking
from training.config import RunConfig
from training.export import export
from training.loop import IntervalReport, TrainingDiverged, fit
from training.state import TrainState, build_state, resume



@dataclass
class Run:
    """What the stages of a run share once its outputs are open."""
    config: RunConfig
    dataset: Dataset
    state: TrainState
    log: object  # tracking.RunLog; a SilentLog on a worker other than rank 0
    saver: checkpoint.Saver = None  # with --model-prefix, on rank 0
    meta: dict = None  # what checkpoints and the export keep beside the weights (checkpoint.model_meta)
    resume_from: dict = None  # the record of the checkpoint a --load-epoch run continues

    def hint(self, epochs_done=None, change=""):
        """What a stopped run tells its user: how far it got, and the checkpoint to resume from."""
        return checkpoint.resume_hint(self.config.model_prefix, self.state.epoch if epochs_done is None
                                      else epochs_done, self.config.epochs, change=change)


@command
def main(argv=None):
    parser, args = train_flags.parse(argv)
    if args.seeds:  # each seed's run finds its own checkpoints
        return seed_group.run_seeds(args, argv)
    nothing_saved = train_flags.find_resume(args, parser)
    if nothing_saved:
        say(args, nothing_saved)
    try:
        run = start(args, parser)
    except KeyboardInterrupt as e:
        print(interrupts.message(e, "no run folder was made yet, nothing was written"), file=sys.stderr)
        return EXIT_INTERRUPTED
    return train(run)


def start(args, parser):
    """Everything before the run folder holds a record: devices, settings, data, network, outputs.
    Returns the Run."""
    ctx, worker = train_flags.open_devices(args, parser)
    source = open_source(args.dataset, args.data_dir, args.data_url, args.coarse_labels, args.image_folder,
                         args.rec_prefix, progress=not args.quiet and worker.chief)  # may download
    config = train_flags.resolve_run(args, parser, source, worker)
    slower = precision.slowdown(config.precision)
    if slower:
        print("warning: %s" % slower, file=sys.stderr, flush=True)
    resume_from = (checkpoint.read_matching(config.model_prefix, config.load_epoch, config.model,
                                            config.class_names)
                   if config.load_epoch is not None else None)
    interrupts.reach("preparation")
    dataset = prepare(*source.load(), classes=config.classes, class_names=source.class_names,
                      input_size=models.input_size(config.model))
    dataset = distributed.shard(dataset, worker)
    interrupts.reach("network build")
    state = build_state(config, dataset, ctx, worker)
    return open_outputs(config, dataset, state, worker, source, resume_from)


def open_outputs(config, dataset, state, worker, source, resume_from):
    """The Run: rank 0 opens the run folder, Comet and the checkpoint saver; the others a
    SilentLog. The meta (with the Comet experiment a resume continues) goes into every
    checkpoint and the export."""
    if not worker.chief:
        return Run(config, dataset, state, tracking.SilentLog(), resume_from=resume_from)
    settings = run_config.recorded_settings(config, dataset, state.ctx, worker, source.name)
    run_log = tracking.open_run_log(config, settings, resumed=resume_from)
    say(config, "training on %s%s%s: %d training / %d test images of %d classes (%s); run folder %s"
        % (", ".join(map(str, state.ctx)), " x %d workers" % worker.num_workers if worker.distributed else "",
           " in %s mixed precision (%s kernels)" % (config.precision, settings["kernels"]) if config.amp else "",
           dataset.train_x.shape[0], dataset.test_x.shape[0], dataset.num_classes,
           ", ".join(dataset.class_names), run_log.run_dir))
    meta = dict(checkpoint.model_meta(dataset, settings), comet_experiment=run_log.experiment_key,
                run_dir=os.path.abspath(run_log.run_dir), resumes=checkpoint.resume_count(resume_from))
    saver = checkpoint.Saver(config.model_prefix, config.save_period, meta) if config.model_prefix else None
    return Run(config, dataset, state, run_log, saver, meta, resume_from)


def resumed_message(config, record, experiment_key):
    """The line that says a run continues a checkpoint: which, after which epoch, into which
    Comet experiment."""
    if experiment_key is None:
        comet = "Comet is off"
    elif experiment_key == record.get("comet_experiment"):
        comet = "continuing Comet experiment %s" % experiment_key
    else:  # the checkpoint's run had none
        comet = "in a new Comet experiment %s" % experiment_key
    return ("resuming from checkpoint %s-%04d: %d of %g epochs done, the next JSON line is epoch %d; %s"
            % (config.model_prefix, record["epoch"], record["epoch"], config.epochs, record["epoch"], comet))


def train(run):
    """Trains the run to its end and reports it; returns the exit code. However the run stops,
    its record says how (status.json, Comet)."""
    config = run.config
    try:
        if run.resume_from is not None:
            resume(run.state, config.model_prefix, run.resume_from)
            say(config, resumed_message(config, run.resume_from, run.log.experiment_key))
        last, confusion = fit(run.state, run.dataset, config.epochs, config.batch_size, run.log, run.saver,
                   show_progress=not config.quiet,
                   interval_report=IntervalReport(config.log_interval) if config.log_interval else None)
        finish(run, last, confusion)
    except KeyboardInterrupt as e:
        return stop(run, e)
    except TrainingDiverged as e:
        return diverged(run, e)
    except USER_ERRORS as e:  # said by cli.command; the record says it too
        run.log.fail(str(e))
        raise
    return 0


def finish(run, last, confusion):
    """The end of a run that trained to the end (last: its last epoch's record; confusion: that
    epoch's confusion matrix on the test set): the population form and the test accuracy both
    ways (the spec'd network), the export, the report. A worker other than rank 0 has nothing to
    report: rank 0 reports the job."""
    if not run.log.keeps_records:
        return
    deployed, results = population_form(run, last["test_acc"])
    if "tta_test_acc" in last:  # the export says what it scores with the test-time augmentation it predicts with
        results = dict(results, tta_test_acc=last["tta_test_acc"])
    exported = None
    if run.config.export:
        interrupts.reach("export")
        net = run.state.net if run.config.export_batch_statistics or deployed is None else deployed
        sample = run.dataset.test_x[:2].as_in_context(run.state.ctx[0])
        exported, no_onnx = export(net, run.config.export, dict(run.meta, **results), sample)
        report_export(run.config, exported, no_onnx)
    model = (run.config.model, exported) if exported and not run.config.no_comet_model else None
    run.log.finish(confusion, run.dataset.class_names, str(run.state.net), model=model, results=results)


def population_form(run, test_acc):
    """For the spec'd network: (its form that predicts each image on its own with the training
    set's population statistics, kept with the last checkpoint; the test accuracy both ways).
    (None, {}) for the other networks, and for a run that keeps nothing the form could go with
    (no --export, no --model-prefix): its pass would cost a third of an epoch for nothing kept
    (export_model.py measures it from a checkpoint later)."""
    if not models.uses_batch_statistics(run.config.model) or not (run.config.export or run.saver):
        return None, {}
    interrupts.reach("population statistics")
    formed = population.form(
        run.state.net, run.dataset, run.config.batch_size, run.state.ctx[0], test_acc=test_acc,
        keep_with=(run.saver.prefix, run.state.epoch) if run.saver else None,
        show_progress=not run.config.quiet)
    say(run.config, formed.summary())
    return formed.net, formed.results


def stop(run, interrupt):
    """Ends a run stopped by Ctrl-C or SIGTERM (or pruned by a sweep: SIGUSR1): the last completed
    epoch is published if it was pending, the record says `interrupted` (`pruned`), and one line
    says where it stopped and what is kept."""
    with interrupts.stopping(interrupt):
        if run.saver is not None:
            run.saver.publish_pending()
        line = interrupts.message(interrupt, run.hint())
        if interrupts.stage() == "export":
            line += " The export was not written: export_model.py writes it from the checkpoint."
        run.log.close(getattr(interrupt, "status", "interrupted"), reason=line)
        print(line, file=sys.stderr)
    return EXIT_INTERRUPTED


def diverged(run, error):
    """Ends a run whose training loss became NaN or infinite: nothing of that epoch is kept."""
    if run.saver is not None:
        run.saver.publish_pending()
    reason = ("%s (--lr %g): the network diverged, most likely because the learning rate is too "
              "high for it; nothing of that epoch was saved or exported" % (error, run.config.lr))
    run.log.fail(reason)
    print("error: %s. %s" % (reason, run.hint(error.epoch, change=" and a lower --lr")), file=sys.stderr)
    return EXIT_DIVERGED
