"""What the test modules share besides fixtures (conftest.py): running the scripts, reading their
output, stopping a run at a named stage, usage errors in-process, small networks and their numpy
twin, checkpoint files and Comet archives. No test module imports another; they import this.

Every process a test starts gets default signal handling (SIGINT included), however the suite
itself was started: a background job of a non-interactive shell ignores SIGINT, and its
children would inherit that.
"""
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import zipfile

import numpy as np

from training import metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # on sys.path: pytest.ini
TIMING = metrics.TIMING  # the JSON-line keys that differ between equal runs
KEYS = [m.name for m in metrics.METRICS if not m.last_epoch_only]  # every epoch's JSON line, in order


# ----------------------------------------------------------------------------------------------
# Running the scripts

def _default_signals():
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def script_env(env=None, base=None):
    """The environment of a script a test runs (base: this process's, os.environ): without Comet
    unless the test says otherwise, and without any stop point of the test process's own."""
    base = os.environ if base is None else base
    environment = {k: v for k, v in base.items() if k not in ("CIFAR_STOP_AT", "CIFAR_STOP_SIGNAL")}
    environment["COMET_DISABLE"] = "1"
    environment.update(env or {})
    return environment


COMMANDS = {"train_cifar10.py": "commands.train", "predict.py": "commands.predict",
            "export_model.py": "commands.export_model", "pack_images.py": "commands.pack_images",
            "sweep.py": "commands.sweep", "launch.py": "commands.launch", "tools/compare_runs.py": "tools.compare_runs",
            "tools/compare_runtimes.py": "tools.compare_runtimes", "tools/benchmark.py": "tools.benchmark",
            "tools/step_profile.py": "tools.step_profile"}


def run_script(script, *args, timeout=600, env=None, cwd=None):
    """Runs one of the scripts (e.g. 'predict.py') in a fresh interpreter, for tests whose point is
    the process (signals, what it loads, its environment at start-up); returns the
    CompletedProcess. It runs in a new temporary folder (where a runs/ folder lands) unless cwd."""
    return subprocess.run([sys.executable, os.path.join(REPO, script)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_default_signals,
                          cwd=cwd or tempfile.mkdtemp(prefix="run-cli-"), env=script_env(env))


def run_command(script, *args, env=None, cwd=None):
    """What `python SCRIPT ARGS` does, run in this process: runtime.start of the script's command,
    with the script's environment (script_env), working folder (as run_script), sys.argv, stdout,
    stderr and signal handlers, all restored afterwards; a SystemExit is its exit code, as the
    interpreter makes it. Output is caught at file descriptors 1 and 2, so what the processes a
    command starts print (--seeds' runs, a sweep's trials) is in it too, in the order written.
    Returns a CompletedProcess, as run_script does."""
    from common import interrupts, runtime

    argv = [str(a) for a in args]
    environment, folder, sys_argv = dict(os.environ), os.getcwd(), sys.argv
    handlers = {signum: signal.getsignal(signum) for signum in interrupts.HANDLED}
    os.environ.clear()
    os.environ.update(script_env(env, environment))
    os.chdir(cwd or tempfile.mkdtemp(prefix="run-cli-"))
    sys.argv = [os.path.join(REPO, script)] + argv  # argparse names the script from it
    try:
        code, out, err = _with_output_caught(lambda: _exit_code(runtime.start, COMMANDS[script], argv))
    finally:
        os.environ.clear()
        os.environ.update(environment)
        os.chdir(folder)
        sys.argv = sys_argv
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return subprocess.CompletedProcess([script] + argv, code, out, err)


def _with_output_caught(call):
    """(call(), what it wrote to file descriptors 1 and 2 or to sys.stdout and sys.stderr): both
    caught in temporary files, everything restored afterwards."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with open(1, "w", buffering=1, encoding="utf-8", closefd=False) as stdout, \
                    open(2, "w", buffering=1, encoding="utf-8", closefd=False) as stderr, \
                    contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                value = call()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        return (value,) + tuple(_text(f) for f in (out, err))


def _text(file):
    file.seek(0)
    return file.read().decode("utf-8", errors="replace")


def _exit_code(start, command, argv):
    try:
        return start(command, argv) or 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)  # sys.exit("message"): the interpreter prints it, exit code 1
        return 1


def run_cli(*args, **kwargs):
    """train_cifar10.py ARGS, in this process (run_command)."""
    return run_command("train_cifar10.py", *args, **kwargs)


def run_cli_process(*args, **kwargs):
    """train_cifar10.py ARGS in a fresh interpreter (run_script): for what a process decides once
    (its environment at start-up, --amp, which MXNet cannot undo)."""
    return run_script("train_cifar10.py", *args, **kwargs)


def predict(*args, **kwargs):
    """predict.py ARGS, in this process (run_command)."""
    return run_command("predict.py", *args, **kwargs)


def stopped_at(stage, *args, signal_name="SIGINT", env=None, process=False, **kwargs):
    """train_cifar10.py ARGS (run_command; process: run_script) stopped by a signal it sends
    itself the Nth time it reaches a stage (STAGE or STAGE@N, common/interrupts.py): the stop
    comes at that point of the run, every time."""
    env = dict(env or {}, CIFAR_STOP_AT=stage, CIFAR_STOP_SIGNAL=signal_name)
    return (run_script if process else run_command)("train_cifar10.py", *args, env=env, **kwargs)


def json_lines(stdout, with_prefix=False):
    """The JSON records of a run's stdout (a CompletedProcess or its text). Lines a launcher
    prefixes (horovodrun's '[0]<stdout>:') are read from their first '{'; with_prefix: as
    (prefix, record) pairs."""
    text = stdout.stdout if hasattr(stdout, "stdout") else stdout
    pairs = [(line[:line.index("{")], json.loads(line[line.index("{"):]))
             for line in text.splitlines() if "{" in line]
    return pairs if with_prefix else [record for _, record in pairs]


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def assert_one_clear_error(result, code, pattern):
    """The script ended with `code`, one `error:` line holding pattern, no traceback, no stdout."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and pattern in errors[0], result.stderr
    assert result.stdout == ""


def usage_error(main, argv, capsys):
    """The one line a command's main(argv) says for a usage error (SystemExit 2), in-process."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------------------------
# Data files

RECORDS = 10000  # per file, as in the official files
FEW = 120  # records per file that belong to classes 0, 1, 2; the rest are classes 3-9


def synthetic_records(seed, records=RECORDS):
    """A batch file's bytes: learnable images (a class colour plus noise), labels 0-9.

    Only the first FEW records of each file have labels 0-2, so `--classes 0,1` selects a tiny
    training set (5 * 80 images) and tests of the command line run in seconds.
    """
    rng = np.random.RandomState(seed)
    labels = np.where(np.arange(records) < FEW, np.arange(records) % 3, 3 + np.arange(records) % 7)
    colours = np.random.RandomState(0).randint(40, 216, size=(10, 3, 1, 1)).astype(np.int16)  # sums in int16
    noise = np.frombuffer(rng.bytes(records * 3072), dtype=np.uint8).astype(np.int16) % 81 - 40
    images = np.clip(colours[labels] + noise.reshape(records, 3, 32, 32), 0, 255).astype(np.uint8)
    out = np.empty((records, 3073), dtype=np.uint8)
    out[:, 0] = labels
    out[:, 1:] = images.reshape(records, -1)
    return out.tobytes()


BATCH_NAMES = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]


CIFAR100_FEW = 90  # records per file with fine labels 0, 1 or 5 (coarse 0, 0, 1); the rest are 10-99
FINE_NAMES = ["fine%02d" % i for i in range(100)]
COARSE_NAMES = ["coarse%02d" % i for i in range(20)]


def cifar100_records(seed, records):
    """A file's bytes: coarse byte, fine byte, then a learnable image (a colour per fine label)."""
    rng = np.random.RandomState(seed)
    fine = np.where(np.arange(records) < CIFAR100_FEW, np.array([0, 1, 5])[np.arange(records) % 3],
                    10 + np.arange(records) % 90)
    colours = np.random.RandomState(1).randint(30, 226, size=(100, 3, 1, 1)).astype(np.int16)  # sums in int16
    noise = np.frombuffer(rng.bytes(records * 3072), dtype=np.uint8).astype(np.int16) % 61 - 30
    images = np.clip(colours[fine] + noise.reshape(records, 3, 32, 32), 0, 255).astype(np.uint8)
    out = np.empty((records, 3074), dtype=np.uint8)
    out[:, 0], out[:, 1] = fine // 5, fine
    out[:, 2:] = images.reshape(records, -1)
    return out.tobytes()


def write_files(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    return folder


def make_tar_gz(members):
    """A .tar.gz in memory. members: list of (name, bytes) or (name, tarfile.TarInfo) pairs."""
    buf = io.BytesIO()
    # compresslevel 0: still a valid gzip stream, without the time spent compressing.
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=0) as tar:
        for name, content in members:
            if isinstance(content, tarfile.TarInfo):
                tar.addfile(content)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Files

def digest(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def copy_checkpoint(src_prefix, dst_prefix, epoch):
    """All files of PREFIX-NNNN (the last one also has the population statistics, .bnstats)."""
    os.makedirs(os.path.dirname(dst_prefix), exist_ok=True)
    for ext in ("params", "states", "json", "bnstats"):
        if os.path.exists("%s-%04d.%s" % (src_prefix, epoch, ext)):
            shutil.copy("%s-%04d.%s" % (src_prefix, epoch, ext), "%s-%04d.%s" % (dst_prefix, epoch, ext))


def load_params(path):
    """{name: numpy array} of an MXNet .params file."""
    import mxnet as mx

    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def archive_messages(run_dir):
    """(the run's one offline Comet archive, the messages it holds)."""
    archives = [os.path.join(run_dir, "comet", f) for f in os.listdir(os.path.join(run_dir, "comet"))]
    assert len(archives) == 1 and archives[0].endswith(".zip")
    with zipfile.ZipFile(archives[0]) as z:
        return archives[0], [json.loads(line) for line in z.read("messages.json").decode().splitlines()]


def experiment_json(archive):
    with zipfile.ZipFile(archive) as z:
        return json.loads(z.read("experiment.json"))


def running(marker):
    """Processes whose command line contains marker (a test's own temporary folder)."""
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return out.split()


# ----------------------------------------------------------------------------------------------
# Small networks

def make_state(ctx, kvstore="device", num_classes=2, total_updates=100, seed=0):
    """A TrainState of the spec'd network with plain SGD and the linear schedule."""
    import mxnet as mx

    from models import SpecResNet
    from training.schedules import LinearDecay
    from training.state import TrainState
    from training.trainer import make_trainer

    mx.random.seed(seed)
    net = SpecResNet(num_classes)
    net.initialize(ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, 0.05, 0.9, LinearDecay(total_updates, base_lr=0.05), kvstore=kvstore)
    return TrainState(net=net, trainer=trainer, ctx=ctx, rng=np.random.RandomState(seed))


def trained_a_little(name, num_classes=3, steps=2, images=8):
    """The network after a few SGD steps on random images: weights and (for networks with running
    statistics) moving mean and variance no longer at their initial values."""
    import mxnet as mx
    from mxnet import autograd, gluon

    import models

    mx.random.seed(0)
    size = models.input_size(name)
    net = models.build(name, num_classes, [mx.cpu()])
    models.initialize(net, name, mx.cpu())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.normal(shape=(images, 3, size, size))
    y = mx.nd.array(np.arange(images) % num_classes)
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(images)
    return net


def export_network(net, name, path, num_classes=3):
    """training.export.export of net with a minimal meta; returns (files, why no ONNX)."""
    import mxnet as mx

    import models
    from training.export import export

    meta = {"model": name, "num_classes": num_classes, "input_size": models.input_size(name),
            "class_names": ["c%d" % i for i in range(num_classes)], "mean": [0.0] * 3, "std": [1.0] * 3}
    size = meta["input_size"]
    return export(net, path, meta, mx.nd.zeros((2, 3, size, size)))


# ----------------------------------------------------------------------------------------------
# A plain numpy implementation of the spec'd network (models/spec_resnet.py's docstring), in float64

def np_conv(x, w):
    """Stride-1 'same' convolution without bias (zero padding of kernel // 2)."""
    k = w.shape[-1]
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    h, wd = x.shape[2:]
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out


def np_bn(x):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)  # biased
    return (x - mean) / np.sqrt(var + 1e-5)


def np_block(x, w3, w1=None):
    y = np.maximum(np_bn(np_conv(x, w3)), 0)
    return y + np_conv(x, w1) if w1 is not None else y


def np_maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def np_spec_net(x, weights):
    """weights: conv3x3 of blocks 1-4, 1x1 skips of blocks 2-4, dense."""
    c1, c2, c3, c4, s2, s3, s4, dense = weights
    x = np_block(x, c1)
    x = np_maxpool2(np_block(x, c2, s2))
    x = np_maxpool2(np_block(x, c3, s3))
    x = np_block(x, c4, s4).max(axis=(2, 3))
    return 0.125 * x @ dense.T


def weights_in_spec_order(net):
    f = net.features
    convs = [f[0].conv, f[1].body.conv, f[3].body.conv, f[5].body.conv,
             f[1].skip, f[3].skip, f[5].skip, net.output[0]]
    return [layer.weight.data().asnumpy().astype(np.float64) for layer in convs]
