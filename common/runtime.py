"""The process MXNet runs in, made ready before MXNet loads: the one way into every command.

    start(command)       what every script and tool runs: the interrupt handling (interrupts.py),
                         prepare(), then the command's main; a stop is one line and exit code 130
    prepare()            a Python MXNet works on, every CPU core, a numpy MXNet works with, the
                         CUDA libraries of its GPU build, AMX for oneDNN where the CPU has it
                         (cpu.py), then MXNet itself; each failure is one `error:` line and exit
                         code 1
    setup()              what prepare() decided: the CPU, its AMX (cpu.py), MXNet's engine (engine.py)
    report()             the same steps as lines that go on past a failure, for bug reports:
                         python -m tools.gpu_report (./train.sh --gpu-report)

Why before MXNet loads: MXNet reads OMP_NUM_THREADS once, when it is first imported, and by
default uses only half the cores (an epoch on a 2-core CPU takes half the time with all of
them); the CUDA libraries must be loaded before libmxnet.so is (cuda.py); oneDNN must start with
its ISA cap, after the kernel granted AMX (cpu.py), and MXNet with its engine (engine.py), both
at its first operator; and a Python or numpy
MXNet cannot run on fails inside its import with a traceback instead of a sentence.

So an entry point's file imports only the standard library and `common` at its top: a script
names the module of its command (commands/), which start() imports once the process is ready; a
tool passes its own main(), which imports what loads MXNet inside it. tests/test_entry_points.py runs
every script and tool and fails if MXNet is imported before prepare() has run. Importing this
module changes nothing in the process.
"""
import importlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata

from . import cli, cpu, engine, interrupts

PYTHONS = ((3, 8), (3, 11))  # oldest and newest Python that MXNet 1.9.1's numpy<1.24 has wheels for
NUMPY_TOO_NEW = (1, 24)  # removed np.bool and np.PZERO, which MXNet 1.9.1 uses
SETUP = ("set up with ./train.sh (or ./test.sh), which builds the project's environment for this "
         "machine, or pip install -r requirements-cpu.txt (CPU) / -r requirements.txt (GPU)")

_ready = False  # set by prepare() (and the report) once MXNet may load
_setup = None  # the Setup prepare() decided


@dataclass(frozen=True)
class Setup:
    """What prepare() decided for this process."""
    cpu: cpu.Cpu
    amx: cpu.Amx
    engine: str  # MXNet's execution engine (engine.py)


def ready():
    """Whether this process has been prepared for MXNet (what the entry-point test checks)."""
    return _ready


def start(command, argv=None):
    """The entry of every script and tool: prepares the process, then returns command's
    main(argv). command: the name of the module that holds it (imported only now, so MXNet
    loads after prepare), or the main function itself. Ctrl-C or SIGTERM at any moment the
    command does not handle itself (the training run handles its own, to say what it kept) ends
    with one line and exit code 130."""
    interrupts.install()
    try:
        interrupts.reach("start-up")
        prepare()
        main = importlib.import_module(command).main if isinstance(command, str) else command
        return main(argv)
    except KeyboardInterrupt as e:
        print(interrupts.message(e, "no file is left half-written"), file=sys.stderr)
        return cli.EXIT_INTERRUPTED


def prepare():
    """Makes the process ready for MXNet, then loads it; exits with one line where it cannot.
    In a process prepared already, it changes nothing (a command started from another's
    process: the tests' in-process runs)."""
    global _ready
    if _ready:
        return
    check_python()
    use_all_cores()
    check_numpy()
    load_cuda_libraries()
    try:
        chosen = decide()
    except (cpu.AmxError, engine.EngineError) as e:
        sys.exit("error: %s" % e)
    _ready = True
    with engine.starting(chosen, _setup.amx.cap):
        import_mxnet()


def check_python(version=None):
    """Exits with one line unless this Python can run MXNet 1.9.1."""
    problem = python_problem(version)
    if problem:
        sys.exit("error: %s" % problem)


def python_problem(version=None):
    version = tuple((version or sys.version_info)[:2])
    if PYTHONS[0] <= version <= PYTHONS[1]:
        return None
    return ("Python %d.%d is not supported: MXNet 1.9.1 needs numpy<1.24, which has no wheels for "
            "Python 3.12 and newer. Use Python 3.8-3.11." % version)


def use_all_cores():
    """Lets MXNet use every core this process may run on, unless the user set OMP_NUM_THREADS;
    in a job of horovodrun, each of the machine's ranks an equal share (HOROVOD_LOCAL_SIZE, which
    horovodrun sets; launch.py gives its workers their share itself)."""
    cores = cpu.usable_cores()
    ranks = os.environ.get("HOROVOD_LOCAL_SIZE", "")
    share = (cores or 1) // (int(ranks) if ranks.isdigit() and int(ranks) else 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(share, 1)))


def check_numpy():
    """Exits with one line when the installed numpy is too new for MXNet 1.9.1."""
    problem = numpy_problem()
    if problem:
        sys.exit("error: %s" % problem)


def numpy_problem():
    try:
        version = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        return None  # MXNet's import says what is missing
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= NUMPY_TOO_NEW:
        return ("numpy %s is installed, but MXNet 1.9.1 needs numpy < 1.24 (it uses np.bool and "
                "np.PZERO): %s (they pin numpy 1.23.5)" % (version, SETUP))
    return None


def load_cuda_libraries():
    """For MXNet's GPU build: loads the CUDA 11 libraries it links, or exits naming the missing
    one; with the pinned cuDNN wheel, quiets MXNet's warning that it is not the cuDNN it was
    compiled against."""
    from . import cuda

    if cuda.gpu_build() is None:
        return
    try:
        loaded = cuda.preload()
    except cuda.CudaLibraryError as e:
        sys.exit("error: %s" % e)
    if cuda.quiet_cudnn_check(loaded, installed_version("nvidia-cudnn-cu11")):
        os.environ.setdefault("MXNET_CUDNN_LIB_CHECKING", "0")  # why: cuda.quiet_cudnn_check


def decide():
    """Decides the Setup, kept for setup(): asks the kernel for AMX where the CPU has it and the
    user's ISA cap allows it (cpu.decide), and chooses MXNet's engine (engine.choose). Returns the
    engine to set (None: the environment's own). Raises cpu.AmxError where the user's own cap
    asks oneDNN for AMX that the kernel refused (the run would die of SIGILL), engine.EngineError
    for an engine MXNet does not have."""
    global _setup
    from . import cuda

    machine = cpu.read()
    amx = cpu.decide(machine, os.environ, cpu.request_amx)
    chosen = engine.choose(os.environ, cuda.gpu_build())
    _setup = Setup(machine, amx, engine.in_use(chosen, os.environ))
    return chosen


def setup():
    """The Setup of this process: what prepare() decided; in a process that loaded MXNet without
    it, AMX is off ('unasked') and the engine is the environment's."""
    if _setup is not None:
        return _setup
    machine = cpu.read()
    return Setup(machine, cpu.unasked(machine), engine.in_use(None, os.environ))


def import_mxnet():
    """Imports MXNet; exits with one line when it is missing or its library cannot load."""
    try:
        import mxnet  # noqa: F401
    except ImportError as e:
        sys.exit("error: MXNet is not installed for this Python (%s): %s" % (e, SETUP))
    except OSError as e:  # a library libmxnet.so links is missing
        sys.exit("error: MXNet could not load its library (%s). mxnet-cu112 needs the CUDA 11 runtime "
                 "libraries and an NVIDIA driver (docs/setup-and-gpus.md); on a machine without a GPU install "
                 "mxnet==1.9.1 instead (the CPU set: CIFAR_MXNET_BUILD=cpu ./train.sh)." % e)


def report():
    """prepare()'s steps as lines for a bug report, going on past each failure: Python, numpy,
    threads, each CUDA library and where it was found, the CPU and where it runs bfloat16, MXNet's
    view of the GPUs."""
    global _ready
    from . import cuda

    lines = ["Python %s: %s" % (sys.version.split()[0], python_problem() or "supported"),
             "numpy: %s" % (numpy_problem() or installed_version("numpy"))]
    use_all_cores()
    lines.append("OMP_NUM_THREADS=%s" % os.environ["OMP_NUM_THREADS"])
    lines += cuda.report()
    try:
        chosen = decide()
        lines += cpu.describe(_setup.cpu, _setup.amx)
        cap = _setup.amx.cap
    except (cpu.AmxError, engine.EngineError) as e:  # loading MXNet would fail, or die of SIGILL
        return lines + ["error: %s" % e, "MXNet not loaded: the line above stops every command"]
    lines.append("MXNet engine: %s" % engine.in_use(chosen, os.environ))
    _ready = True
    try:
        with engine.starting(chosen, cap):
            import mxnet as mx
        features = mx.runtime.Features()
        lines.append("MXNet %s loaded: %d GPU(s) visible; CUDA %s, CUDNN %s, NCCL %s, MKLDNN %s" % (
            mx.__version__, mx.context.num_gpus(), *(
                "on" if features.is_enabled(f) else "off" for f in ("CUDA", "CUDNN", "NCCL", "MKLDNN"))))
    except Exception as e:  # noqa: BLE001 - whatever stops MXNet is what the report is for
        lines.append("MXNet did not load: %s: %s" % (type(e).__name__, e))
    return lines


def installed_version(distribution):
    """The installed version of a distribution (e.g. 'gluoncv'), or 'not installed'."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"

