"""Training recipes: what --recipe chooses. One name for each thing throughout:

    recipe           a Recipe (base.py): everything a run trains differently from the flags'
                     own procedure (flag defaults, fixed flags, network, schedule, Trainer
                     settings, augmentation, hooks), registered under its name (--recipe NAME)
    hyperparameters  a recipe's numbers in its source's own terms (fast94.HYPERPARAMETERS)
    hooks            a run's work beside the optimizer's update, and the state of it that a
                     checkpoint keeps (base.Hooks; a recipe's hooks(net, total_updates))

    base             the interface (Recipe, Hooks), the flags' own procedure as its defaults
    spec             the spec's procedure, as the flags set it (the default)
    fast94           airbench94's network and training in MXNet's terms, its optimizer and hooks

A new recipe is one module of this package that defines RECIPE, an instance of a Recipe
subclass named as the module; `register` adds one from elsewhere (tests do). Importing this
package loads nothing else: a tool that never loads MXNet can list the names.
"""
import importlib
import pkgutil

DEFAULT = "spec"  # the spec's procedure, as the flags set it
_registered = {}  # name -> Recipe, as registered or loaded


def _modules():
    return [m.name for m in pkgutil.iter_modules(__path__) if m.name != "base" and not m.name.startswith("_")]


def names():
    """The recipes' names, the default first."""
    return sorted(set(_modules()) | set(_registered), key=lambda name: (name != DEFAULT, name))


def register(recipe):
    """Makes `recipe` (a base.Recipe) a choice of --recipe under recipe.name; returns it."""
    _registered[recipe.name] = recipe
    return recipe


def get(name):
    """The recipe of that name (its module is loaded the first time); KeyError if none."""
    if name not in _registered:
        if name not in _modules():
            raise KeyError("no recipe %r: the recipes are %s" % (name, ", ".join(names())))
        register(importlib.import_module("%s.%s" % (__name__, name)).RECIPE)
    return _registered[name]


def for_network(network):
    """The names of the recipes made for that network (those whose `network` it is)."""
    return [name for name in names() if get(name).network == network]
