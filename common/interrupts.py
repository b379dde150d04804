"""Stopping cleanly at any moment: Ctrl-C (SIGINT) and SIGTERM raise `Interrupted` from a
command's first line to its last, and the stage the process has reached names where it stopped.
SIGUSR1 stops the same way: it is how sweep.py prunes a trial (the run's status says `pruned`).

    install()        at every command's start (runtime.start): SIGINT and SIGTERM raise
                     Interrupted. A SIGINT the process was started ignoring (a background job of a
                     non-interactive shell) stays ignored for the whole run, as Python itself
                     leaves it: one handling from the first line to the last.
    reach(stage)     the process enters a stage ('download', 'training', 'export', ...), which
                     the stop message names
    held()           a block that an interrupt cannot split: it is raised when the block ends
    stopping(e)      the block that ends a process stopped by e: the same signal again is dropped

CIFAR_STOP_AT=STAGE or STAGE@N (or a named point of a stage) makes the process send itself
SIGINT (CIFAR_STOP_SIGNAL=SIGTERM: that one) the Nth time it reaches it: the tests stop a run
at a named point this way, where a timer would race the run. Nothing else reads these variables.
"""
import contextlib
import os
import signal
import threading

PRUNE = signal.SIGUSR1  # sweep.py's "stop this trial": the study has better ones
HANDLED = (signal.SIGINT, signal.SIGTERM, PRUNE)

_reached = {}  # stage -> times reached
_stage = ["start-up"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM; a KeyboardInterrupt, so the code that cleans up after one catches both."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self):
        return signal.Signals(self.signum).name

    @property
    def status(self):
        """What the run's record says of the stop: 'pruned' by a sweep, else 'interrupted'."""
        return "pruned" if self.signum == PRUNE else "interrupted"


def _raise(signum, frame):
    raise Interrupted(signum)


def install():
    """SIGINT (unless ignored from the start) and SIGTERM raise Interrupted in the main thread;
    the command starts at stage 'start-up', with no stage reached yet."""
    _reached.clear()
    _stage[0] = "start-up"
    for signum in HANDLED:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise)


def stage():
    """The stage the process reached last ('start-up' before any)."""
    return _stage[0]


def reach(name, point=None):
    """Marks that the process is in stage `name`, at `point` of it where that is named (e.g.
    'epoch', an epoch's end in training); the test hook may stop it here."""
    _stage[0] = name
    key = point or name
    _reached[key] = count = _reached.get(key, 0) + 1
    wanted, _, times = os.environ.get("CIFAR_STOP_AT", "").partition("@")
    if wanted == key and count == int(times or 1):
        os.kill(os.getpid(), getattr(signal, os.environ.get("CIFAR_STOP_SIGNAL", "SIGINT")))


def message(interrupt, what_was_kept):
    """The one line that says a command stopped: by which signal, where, and what is kept."""
    name = interrupt.name if isinstance(interrupt, Interrupted) else "SIGINT"
    if name == PRUNE.name:
        name += " (the sweep pruned this trial)"
    return "stopped by %s during %s; %s" % (name, stage(), what_was_kept)


@contextlib.contextmanager
def held():
    """Holds Ctrl-C and SIGTERM back until the block is done, then raises Interrupted.

    So that an epoch's report and its checkpoint happen together or not at all: otherwise an
    interrupt between them would leave an epoch logged (stdout, Comet) but not saved, and logged
    a second time after the resume. A signal that is ignored stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    received = []
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(received[0])


@contextlib.contextmanager
def stopping(interrupt):
    """The block in which a process stopped by `interrupt` writes what it keeps: the same signal
    again is dropped, as it asks for what is already under way. A sweep killed with kill -9 sends
    its run SIGTERM once for each of its threads as they end (Linux hands the orphan to the next
    thread, with its parent-death signal each time). A second Ctrl-C still stops at once."""
    signum = interrupt.signum if isinstance(interrupt, Interrupted) else signal.SIGINT
    if signum == signal.SIGINT or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)
