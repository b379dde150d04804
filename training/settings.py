"""Which of a run's recorded settings (config.json, Comet's parameters) name or place the run
rather than decide what it trains. Runs that differ only in these are one configuration
(tools.compare_runs groups them), and a resume that changes them changes nothing of the training
(tracking records only the others as changed). Imports nothing, so that tools which never load
MXNet can read it."""

PER_RUN_SETTINGS = frozenset({
    "seed",  # the runs of a seed group differ in it; a resume takes its RNG from the checkpoint
    "run_name", "run_group", "output_dir", "tags",  # names and folders
    "load_epoch", "model_prefix", "export", "export_batch_statistics",  # what is read and written
    "omp_num_threads", "log_interval",  # how it runs and talks
    "cpu_model", "cpu_cores", "amx", "kernels", "mxnet_engine",  # what it ran on
    "comet_project", "comet_workspace", "no_comet_model",  # where it is reported
})
