"""Learning-rate schedules: functions of the optimizer's update count alone.

MXNet's optimizer calls a schedule with num_update = 1 for the first update. Because nothing else
is kept, a resumed Trainer (its update count restored) continues the same curve, and a dist_async
kvstore server can run the schedule itself. A kvstore server unpickles the schedule while its
`import mxnet` is still in progress, so this module imports only mxnet.lr_scheduler, which has no
other MXNet dependency, and the package's __init__ only prepares the process (its `import mxnet`
finds the module already loading). tests/test_distributed.py's dist_async job proves it.
"""
import math

from mxnet.lr_scheduler import LRScheduler


class _Schedule(LRScheduler):
    """Linear warmup from 0 over warmup_updates (update k of them uses base_lr * k / warmup),
    then after_warmup(k), k counting the updates after the warmup from 0."""

    def __init__(self, base_lr, warmup_updates=0):
        super().__init__(base_lr=base_lr)
        if warmup_updates < 0:
            raise ValueError("warmup_updates must be 0 or more, got %r" % warmup_updates)
        self.warmup_updates = warmup_updates

    def __call__(self, num_update):
        if self.warmup_updates and num_update <= self.warmup_updates:
            return self.base_lr * max(num_update, 1) / self.warmup_updates
        return self.after_warmup(max(num_update - 1, 0) - self.warmup_updates)

    def after_warmup(self, k):
        raise NotImplementedError


class LinearDecay(_Schedule):
    """lr = base_lr * (1 - progress), progress = updates done / total_updates (the spec's).

    Update k (1-based) uses base_lr * (1 - (k - 1) / total_updates): the last update uses
    base_lr / total_updates and the rate after it is 0. With a warmup, the line runs over the
    updates after it.
    """

    def __init__(self, total_updates, base_lr=0.1, warmup_updates=0):
        super().__init__(base_lr, warmup_updates)
        if total_updates <= warmup_updates:
            raise ValueError("total_updates (%r) must exceed the warmup (%r)"
                             % (total_updates, warmup_updates))
        self.total_updates = total_updates

    def after_warmup(self, k):
        span = self.total_updates - self.warmup_updates
        return self.base_lr * (1.0 - min(k, span) / span)


class StepDecay(_Schedule):
    """lr = base_lr * factor ** (number of decay points passed); decay_at: update counts
    (after the warmup) from which the next factor applies, e.g. the starts of epochs 100, 150."""

    def __init__(self, decay_at, factor=0.1, base_lr=0.1, warmup_updates=0):
        super().__init__(base_lr, warmup_updates)
        self.decay_at = sorted(decay_at)
        self.factor = factor

    def after_warmup(self, k):
        return self.base_lr * self.factor ** sum(k >= d for d in self.decay_at)


class PiecewiseLinear(LRScheduler):
    """lr = base_lr * a factor drawn through knots: [(fraction of total_updates, factor), ...],
    the first at 0 and the last at 1; update k (1-based) uses the factor at k - 1 updates done, a
    knot's update count rounded down (as airbench94 counts its warmup: int(total * 0.23)), and
    the last factor holds after total_updates. airbench94's: [(0, 0.2), (0.23, 1), (1, 0.07)]."""

    def __init__(self, total_updates, knots, base_lr=1.0):
        super().__init__(base_lr=base_lr)
        fractions = [f for f, _ in knots]
        if fractions[0] != 0 or fractions[-1] != 1 or fractions != sorted(fractions):
            raise ValueError("knots must rise from fraction 0 to 1, got %r" % (knots,))
        self.total_updates = total_updates
        self.knots = [(int(total_updates * f), factor) for f, factor in knots]

    def __call__(self, num_update):
        done = min(max(num_update - 1, 0), self.total_updates)
        for (start, a), (end, b) in zip(self.knots, self.knots[1:]):
            if done < end or end == self.total_updates:
                return self.base_lr * (a + (b - a) * (done - start) / max(end - start, 1))
        return self.base_lr * self.knots[-1][1]


def make_schedule(mode, base_lr, epochs, updates_per_epoch, factor=0.1, decay_epochs=(),
                  warmup_epochs=0, decay_period=0):
    """The schedule of a run in epochs: 'linear' (to 0 at the end), 'step' (x factor at the
    start of each epoch in decay_epochs, and of every decay_period-th epoch) or 'constant',
    after warmup_epochs of linear warmup. epochs may end within the last one (9.9)."""
    if mode == "constant":
        mode, decay_epochs = "step", ()
    elif decay_period:
        decay_epochs = sorted(set(decay_epochs) | set(range(decay_period, math.ceil(epochs), decay_period)))
    warmup = warmup_epochs * updates_per_epoch
    if mode == "linear":
        return LinearDecay(math.ceil(epochs * updates_per_epoch), base_lr, warmup)
    if mode == "step":
        return StepDecay([e * updates_per_epoch - warmup for e in decay_epochs], factor, base_lr,
                         warmup)
    raise ValueError("unknown lr mode %r (linear, step or constant)" % mode)
