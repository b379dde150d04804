"""The recipe registry (training/recipes/): every recipe is one module on one interface, and a
recipe of a user's own, registered here alone, trains through train_cifar10.py's main with its
defaults, fixed flags, schedule, augmentation and checkpointed hooks."""
import json

import mxnet as mx
import numpy as np
import pytest

from helpers import json_lines
from training import recipes
from training.recipes.base import Hooks, Recipe


class Cutout:
    """Zeroes one square of `size` pixels per image, at a place the run's rng draws."""

    def __init__(self, size):
        self.size = size

    def __call__(self, x, indices, epoch, rng):
        n, _, height, width = x.shape
        mask = np.ones((n, 1, height, width), dtype=np.float32)
        for i, (top, left) in enumerate(zip(rng.randint(0, height - self.size + 1, n),
                                            rng.randint(0, width - self.size + 1, n))):
            mask[i, :, top:top + self.size, left:left + self.size] = 0
        return x * mx.nd.array(mask, ctx=x.context)


class UpdateCount(Hooks):
    """Counts the updates; a checkpoint keeps the count."""

    def __init__(self):
        self.updates, self.epochs = 0, []

    def start_epoch(self, epoch):
        self.epochs.append(epoch)

    def after_update(self, update):
        self.updates = update

    def state(self):
        return [mx.nd.array([self.updates])]

    def load_state(self, arrays):
        self.updates = int(arrays[0].asscalar())


class CosineCutout(Recipe):
    name = "cosine-cutout"
    summary = "a cosine schedule to 0, with cutout"
    flag_defaults = {"lr": 0.05, "batch_size": 32}
    fixed_flags = {"lr_mode": "it follows a cosine schedule"}
    built = []  # the hooks of each run, to look at afterwards

    def schedule_name(self, config):
        return "cosine"

    def schedule(self, config, updates_per_epoch, total_updates, base_lr):
        return mx.lr_scheduler.CosineScheduler(max_update=total_updates, base_lr=base_lr, final_lr=0)

    def augmentation(self, config, dataset, rng):
        return Cutout(8)

    def hooks(self, net, total_updates):
        self.built.append(UpdateCount())
        return self.built[-1]


@pytest.fixture
def cosine_cutout(monkeypatch):
    recipe = CosineCutout()
    monkeypatch.setitem(recipes._registered, recipe.name, recipe)
    monkeypatch.setenv("COMET_DISABLE", "1")
    return recipe


def test_a_recipe_of_ones_own_trains_through_main_with_everything_it_changes(cosine_cutout, data_dir, tmp_path,
                                                                             capsys):
    from commands import train

    prefix = str(tmp_path / "ck")
    assert train.main(["--recipe", "cosine-cutout", "--data-dir", data_dir, "--classes", "0,1", "--epochs", "2",
                       "--quiet", "--output-dir", str(tmp_path / "run"), "--model-prefix", prefix]) == 0
    lines = json_lines(capsys.readouterr().out)
    updates = 2 * 13  # 2 epochs of 13 batches (400 images of classes 0 and 1, 32 a batch: its default)
    schedule = mx.lr_scheduler.CosineScheduler(max_update=updates, base_lr=0.05, final_lr=0)  # --lr: its default
    assert [line["epoch"] for line in lines] == [0, 1]
    assert [line["lr"] for line in lines] == pytest.approx([schedule(13), schedule(26)], abs=1e-6)
    with open(prefix + "-0002.json") as f:
        record = json.load(f)
    assert record["config"]["lr_schedule"] == "cosine" and record["config"]["batch_size"] == 32
    assert {"params", "states", "recipe"} <= set(record["files"])
    assert mx.nd.load(prefix + "-0002.recipe")[0].asscalar() == updates
    assert cosine_cutout.built[-1].epochs == [0, 1]


def test_a_recipe_of_ones_own_is_in_the_help_and_its_fixed_flags_are_usage_errors(cosine_cutout, usage, capsys):
    from commands import train_flags

    assert "cosine-cutout" in train_flags.build_parser().format_help()
    assert "--lr-mode would have no effect: with --recipe cosine-cutout it follows a cosine schedule" in \
        usage("--recipe", "cosine-cutout", "--lr-mode", "step")


def test_each_recipe_module_holds_the_recipe_of_its_name():
    assert recipes.names()[0] == recipes.DEFAULT
    for name in recipes.names():
        recipe = recipes.get(name)
        assert recipe.name == name and isinstance(recipe, Recipe)
    with pytest.raises(KeyError, match="no recipe 'nonesuch': the recipes are spec, fast94"):
        recipes.get("nonesuch")


@pytest.mark.parametrize("recipe, model, expected", [
    ("spec", "spec-resnet", {"drop_last": False, "augment": "NoneType", "hooks": "NoneType",
                             "schedule": "LinearDecay", "name": "linear-to-zero"}),
    ("fast94", "airbench94", {"drop_last": True, "augment": "AlternatingFlipTranslate", "hooks": "Fast94Hooks",
                              "schedule": "PiecewiseLinear", "name": "airbench94 piecewise linear"}),
])
def test_every_recipe_builds_its_run_through_one_interface(recipe, model, expected):
    from data import prepare
    from training import distributed
    from training.config import RunConfig, schedule_name
    from training.state import build_state

    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, size=(40, 3, 32, 32)).astype(np.uint8)
    y = np.arange(40) % 2
    dataset = prepare(x, y, x[:8], y[:8], classes=[0, 1], class_names=["a", "b"])
    config = RunConfig(**dict(recipes.get(recipe).defaults(), recipe=recipe, model=model, batch_size=16, epochs=2))
    state = build_state(config, dataset, [mx.cpu()], distributed.connect("device", {}))

    assert state.drop_last == expected["drop_last"] and recipes.get(recipe).drop_last == expected["drop_last"]
    assert type(state.augment).__name__ == expected["augment"]
    assert type(state.hooks).__name__ == expected["hooks"]
    assert type(state.trainer.optimizer.lr_scheduler).__name__ == expected["schedule"]
    assert schedule_name(config) == expected["name"]
    assert state.run_batches == (2 if expected["drop_last"] else 3) * 2  # 40 images: 2 whole batches of 16, or 3
