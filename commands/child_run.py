"""A training run that another command starts (--seeds, a sweep's trial): train_cifar10.py in a
process of its own, and the one rule for stopping it with its parent.

    start(args, **popen)   the run, which gets SIGTERM if this process dies (Linux)
    stop(child, interrupt) after this process was stopped: passes the stop on, waits for the run

A Ctrl-C (SIGINT) reaches the run by itself, from the terminal, to its whole process group; any
other stop (SIGTERM, or a sweep's own) is passed on as SIGTERM. Either way the run saves what it
can and says so before this process goes on.
"""
import ctypes
import signal
import subprocess
import sys

from common.interrupts import Interrupted

from . import TRAIN_SCRIPT

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def _die_with_parent():
    """In the run's process before it starts: SIGTERM when this process ends (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a killed parent leaves its run to finish
        pass


def start(args, **popen):
    """train_cifar10.py ARGS started; popen: subprocess.Popen's other arguments (stdout=PIPE...)."""
    return subprocess.Popen([sys.executable, TRAIN_SCRIPT] + list(args), preexec_fn=_die_with_parent, **popen)


def stop(child, interrupt):
    """The run's exit code, once it has ended after this process was stopped by `interrupt` (the
    KeyboardInterrupt caught): SIGTERM passed on unless it was Ctrl-C, which reached it already."""
    if isinstance(interrupt, Interrupted) and interrupt.signum != signal.SIGINT:
        child.send_signal(signal.SIGTERM)
    return child.wait()
