"""How MXNet starts in this process: which execution engine runs its operators, and the moment its
engine and oneDNN read what the process decided.

    choose(environ, gpu_build)   'NaiveEngine', or None for MXNet's own default; EngineError for a
                                 MXNET_ENGINE_TYPE that MXNet has no engine of
    starting(engine, cap)        the block MXNet is imported in; its first operator runs at the
                                 block's end, with MXNET_ENGINE_TYPE and DNNL_MAX_CPU_ISA set

Why NaiveEngine: MXNet's default, ThreadedEnginePerDevice, runs operators in a worker thread of its
own, each with an OpenMP team, behind the Python thread that queues them. A CPU process on its own
has nothing to overlap that way (its batches are cut on the same cores), and the worker's team
and the Python thread then compete for the cores: NaiveEngine runs each operator in the Python
thread, with the same kernels and the same numbers (docs/results-and-speed.md). MXNet's default
stays where overlap is the point: its GPU build (GPU streams behind the Python loop) and a
process of a job of several (gradients sent while the backward pass goes on). A user's
MXNET_ENGINE_TYPE is obeyed as given.

MXNet creates its engine, and oneDNN reads its cap, at the first operator, not when MXNet loads;
the environment holds both for the block only, so that a child process (a run of --seeds, a
sweep trial, a test's interpreter) inherits the user's environment and decides for itself.

Standard library only until the block's end. Importing it changes nothing.
"""
import contextlib
import os
import sys
import tempfile

from .cpu import ONEDNN_CAP

VARIABLE = "MXNET_ENGINE_TYPE"
NAIVE = "NaiveEngine"
MXNET_DEFAULT = "ThreadedEnginePerDevice"
ENGINES = (NAIVE, "ThreadedEngine", MXNET_DEFAULT)  # the engines MXNet 1.9.1 has
# Set in each process of a job: by launch.py (every role), horovodrun, and MPI's launchers.
JOB_VARIABLES = ("DMLC_ROLE", "HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
ENGINE_LINE = "MXNet start using engine:"  # what MXNet logs when MXNET_ENGINE_TYPE names its engine


class EngineError(Exception):
    """MXNET_ENGINE_TYPE names no engine of MXNet's: its first operator would fail with a traceback."""


def choose(environ, gpu_build):
    """The engine this process sets: NaiveEngine for one CPU process of the CPU build; None (the
    environment's own: the user's MXNET_ENGINE_TYPE, else MXNet's default) otherwise."""
    given = environ.get(VARIABLE)
    if given and given not in ENGINES:
        raise EngineError("%s=%s is not an engine of MXNet's: give one of %s, or unset it"
                          % (VARIABLE, given, ", ".join(ENGINES)))
    if given or gpu_build or any(name in environ for name in JOB_VARIABLES):
        return None
    return NAIVE


def in_use(chosen, environ):
    """The name of the engine a process runs, given what choose() returned."""
    return chosen or environ.get(VARIABLE) or MXNET_DEFAULT


@contextlib.contextmanager
def starting(engine, cap):
    """The block MXNet is imported in. At its end (where there is an engine or cap to set) one tiny
    convolution, MXNet's first operator, creates the engine (engine: None leaves MXNet's
    choice) and starts oneDNN with the ISA cap (cap: a DNNL_MAX_CPU_ISA value, None for the
    environment's own); then the environment is as the user gave it. The line MXNet logs for an
    engine it was told to use is left out: the run's record says which engine ran."""
    values = {name: value for name, value in ((VARIABLE, engine), (ONEDNN_CAP, cap)) if value}
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
        if not values:  # nothing to hand over: MXNet starts as it will
            return
        with _without_line(ENGINE_LINE, engine is not None):
            import mxnet as mx

            one = mx.nd.ones((1, 1, 1, 1), ctx=mx.cpu())
            mx.nd.Convolution(one, one, kernel=(1, 1), num_filter=1, no_bias=True).wait_to_read()
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _without_line(text, active):
    """A block whose writes to the process's stderr (file descriptor 2, where MXNet's C++ logs)
    are passed on after it, but for the lines holding text."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(True) if text not in line]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
