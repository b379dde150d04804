"""Lookahead weight averaging, as airbench94 does it (legacy/airbench94.py): every `every`
updates the network's values move into a running average, and the network continues from it.

    average = decay * average + (1 - decay) * values;  values = average
    decay   = 0.95^5 * (t / T)^3     at update t of T (t a multiple of `every`)

so early on the network follows its own updates, and towards the end it is held ever closer to
the average; after the last update (decay 1.0) the network is the average. The average covers
every value of the network: weights and BatchNorm's running statistics alike, each copy on its
own device (the running statistics of several devices differ).
"""
EVERY = 5  # updates between two steps of the average
DECAY = 0.95 ** EVERY  # the decay's scale
POWER = 3  # the decay grows as (t / T)^3


def decay_at(update, total_updates, scale=DECAY, power=POWER):
    """The decay of the average's step after `update` of total_updates."""
    return scale * (update / total_updates) ** power


class Lookahead:
    """The running average of a network's values (its collect_params()), stepped after updates."""

    def __init__(self, params, total_updates, every=EVERY):
        self.params = list(params.values())
        self.total_updates = total_updates
        self.every = every
        self.average = [[d.copy() for d in p.list_data()] for p in self.params]

    def after_update(self, update):
        """Call after each optimizer update, with the update count (1 for the first)."""
        if update % self.every == 0:
            self.step(decay_at(update, self.total_updates))
        if update == self.total_updates:
            self.step(1.0)

    def step(self, decay):
        """average = decay * average + (1 - decay) * values; the network takes the average."""
        for param, averages in zip(self.params, self.average):
            for value, average in zip(param.list_data(), averages):
                average[:] = decay * average + (1 - decay) * value
                value[:] = average

    def state(self):
        """The average as {'PARAMETER/DEVICE': NDArray}, parameters by their place in the network
        (an instance's name prefix differs between two builds of it), for a checkpoint."""
        return {"%d/%d" % (k, i): a for k, averages in enumerate(self.average) for i, a in enumerate(averages)}

    def load_state(self, state):
        """Restores what state() gave, into the same network built anew (a resume continues the
        same average)."""
        for k, averages in enumerate(self.average):
            for i, average in enumerate(averages):
                average[:] = state["%d/%d" % (k, i)].as_in_context(average.context)

