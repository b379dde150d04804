"""--recipe fast94 (airbench94's network and recipe) through train_cifar10.py: its defaults and
their flags, a run that ends within an epoch, test-time augmentation from the last epoch's line
to predict.py and ONNX Runtime, exact resume with the lookahead average, the whitening bias's
epochs, several devices."""
import json
import math
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from commands import train_flags
from common import cpu
from helpers import archive_messages, digest, json_lines, predict, run_cli, run_cli_process, without_timing
from training import distributed
from training.recipes.fast94 import RECIPE
from training.config import RunConfig
from training.loop import train_one_epoch
from training.state import build_state

SMALL = ["--classes", "0,1,2", "--batch-size", "64", "--quiet"]  # 600 training images
PER_EPOCH = 600 // 64  # whole batches only


def test_the_recipe_sets_its_defaults_and_each_flag_still_overrides_its_own():
    _, args = train_flags.parse(["--recipe", "fast94"])
    assert (args.model, args.epochs, args.batch_size, args.lr, args.momentum, args.wd) == \
        ("airbench94", 9.9, 1024, 11.5, 0.85, 0.0153)
    assert (args.label_smoothing, args.tta_level, args.optimizer) == (0.2, 2, "nesterovsgd")
    _, args = train_flags.parse(["--recipe", "fast94", "--epochs", "5", "--batch-size", "512", "--tta-level", "0"])
    assert (args.epochs, args.batch_size, args.tta_level, args.lr) == (5, 512, 0, 11.5)
    _, args = train_flags.parse(["--epochs", "2.5"])  # a fraction, for any recipe
    assert (args.recipe, args.model, args.epochs, args.batch_size) == ("spec", "spec-resnet", 2.5, 128)


@pytest.mark.parametrize("argv, message", [
    (["--recipe", "fast94", "--model", "spec"], "--recipe fast94 trains airbench94 (its settings are made for "
                                                "that network): leave out --model spec-resnet"),
    (["--model", "airbench94"], "--model airbench94 trains with a recipe made for it: give --recipe fast94"),
    (["--recipe", "fast94", "--augment"], "--augment would have no effect: with --recipe fast94"),
    (["--recipe", "fast94", "--optimizer", "nag"], "--optimizer would have no effect"),
    (["--recipe", "fast94", "--warmup-epochs", "1"], "--warmup-epochs would have no effect"),
    (["--epochs", "0"], "argument --epochs: expected a number above 0"),
    (["--label-smoothing", "1"], "argument --label-smoothing: expected a fraction from 0 to below 1"),
    (["--tta-level", "3"], "argument --tta-level: invalid choice"),
])
def test_flags_the_recipe_cannot_take_are_usage_errors(usage, argv, message):
    assert message in usage(*argv)


@pytest.fixture(scope="module")
def fast94_run(tmp_path_factory, data_dir):
    """A float32 run of 1.5 epochs with a checkpoint after each, an export and an offline Comet
    experiment, and the same run resumed from its first checkpoint."""
    out = tmp_path_factory.mktemp("fast94")
    prefix, export = str(out / "ck"), str(out / "exported")
    args = ["--recipe", "fast94", "--epochs", "1.5", "--data-dir", data_dir, *SMALL, "--model-prefix", prefix]
    offline = {"COMET_DISABLE": "", "COMET_API_KEY": "", "HOME": str(tmp_path_factory.mktemp("home"))}
    whole = run_cli(*args, "--export", export, "--output-dir", str(out / "run"), env=offline)
    assert whole.returncode == 0, whole.stderr
    resumed_prefix = str(out / "again")
    for ext in ("params", "states", "json", "recipe"):
        os.link("%s-0001.%s" % (prefix, ext), "%s-0001.%s" % (resumed_prefix, ext))
    resumed = run_cli(*args[:-1], resumed_prefix, "--load-epoch", "1", "--output-dir", str(out / "resumed"),
                      "--no-comet")
    assert resumed.returncode == 0, resumed.stderr
    return {"whole": json_lines(whole), "stdout": whole.stdout, "resumed": json_lines(resumed), "prefix": prefix,
            "resumed_prefix": resumed_prefix, "export": export, "out": out}


def test_a_run_ends_within_its_last_epoch_and_reports_tta_accuracy_there(fast94_run):
    lines = fast94_run["whole"]
    assert [line["epoch"] for line in lines] == [0, 1]
    assert len(fast94_run["stdout"].splitlines()) == 2  # stdout holds the JSON lines alone
    assert "tta_test_acc" not in lines[0] and 0 <= lines[1]["tta_test_acc"] <= 1
    assert lines[1]["test_acc"] > 0.5  # three colour classes: learnt, not guessed
    with open(fast94_run["prefix"] + "-0002.json") as f:
        record = json.load(f)
    assert record["num_update"] == math.ceil(PER_EPOCH * 1.5)  # as airbench94 counts its 9.9 epochs
    assert sorted(record["files"]) == ["params", "recipe", "states"]  # recipe: the lookahead average
    assert record["config"]["recipe"] == "fast94" and record["config"]["lr_schedule"] == "airbench94 piecewise linear"


def test_comet_gets_every_epoch_and_the_tta_accuracy_at_the_end(fast94_run):
    _, messages = archive_messages(str(fast94_run["out"] / "run"))
    metrics = [m["payload"]["metric"] for m in messages if m["type"] == "metric_msg"]
    for line in fast94_run["whole"]:
        logged = {m["metricName"]: m["metricValue"] for m in metrics if m["epoch"] == line["epoch"]}
        assert logged["test_acc"] == line["test_acc"] and logged.get("tta_test_acc") == line.get("tta_test_acc")
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["final_tta_test_acc"] == fast94_run["whole"][-1]["tta_test_acc"]


def test_a_resume_continues_the_run_exactly_lookahead_included(fast94_run):
    assert without_timing(fast94_run["resumed"]) == without_timing(fast94_run["whole"][1:])
    assert digest(fast94_run["resumed_prefix"] + "-0002.params") == digest(fast94_run["prefix"] + "-0002.params")
    assert digest(fast94_run["resumed_prefix"] + "-0002.recipe") == digest(fast94_run["prefix"] + "-0002.recipe")


def copy_first_checkpoint(fast94_run, prefix, recipe_state):
    """The run's first checkpoint under prefix, its recipe state under the extension
    recipe_state (None: without it)."""
    for ext in ("params", "states"):
        shutil.copy("%s-0001.%s" % (fast94_run["prefix"], ext), "%s-0001.%s" % (prefix, ext))
    with open(fast94_run["prefix"] + "-0001.json") as f:
        record = json.load(f)
    entry = record["files"].pop("recipe")
    if recipe_state:
        shutil.copy(fast94_run["prefix"] + "-0001.recipe", "%s-0001.%s" % (prefix, recipe_state))
        record["files"][recipe_state] = dict(entry, name="%s-0001.%s" % (os.path.basename(prefix), recipe_state))
    with open(prefix + "-0001.json", "w") as f:
        json.dump(record, f)


def resume_first_checkpoint(prefix, data_dir, out):
    return run_cli("--recipe", "fast94", "--epochs", "1.5", "--data-dir", data_dir, *SMALL, "--model-prefix", prefix,
                   "--load-epoch", "1", "--no-comet", "--output-dir", out)


def test_a_checkpoint_that_keeps_the_average_under_its_older_name_resumes_the_same(fast94_run, data_dir, tmp_path):
    prefix = str(tmp_path / "older")
    copy_first_checkpoint(fast94_run, prefix, "lookahead")  # as fast94 checkpoints were written at first
    result = resume_first_checkpoint(prefix, data_dir, str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert without_timing(json_lines(result)) == without_timing(fast94_run["whole"][1:])
    assert digest(prefix + "-0002.recipe") == digest(fast94_run["prefix"] + "-0002.recipe")


def test_a_checkpoint_without_its_lookahead_average_is_one_error(fast94_run, data_dir, tmp_path):
    prefix = str(tmp_path / "old")
    copy_first_checkpoint(fast94_run, prefix, None)  # as a checkpoint written before the average was kept
    result = resume_first_checkpoint(prefix, data_dir, str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: %s-0001.json holds no state of the recipe's hooks (%s-0001.recipe), which this run continues; "
        "resume from a checkpoint of a run of the same --recipe" % (prefix, prefix))
    assert not os.path.exists(prefix + "-0002.json")


def test_predict_uses_the_models_test_time_augmentation_in_mxnet_and_onnx_runtime(fast94_run, data_dir):
    last, export, out = fast94_run["whole"][-1], fast94_run["export"], fast94_run["out"]
    with open(export + "-meta.json") as f:
        meta = json.load(f)
    assert meta["tta_level"] == 2 and meta["tta_test_acc"] == last["tta_test_acc"]
    scores, labels = {}, {}
    for name, model, flags in [("tta", export, []), ("onnx", export + ".onnx", []),
                               ("plain", export, ["--no-tta"]), ("single", export, ["--batch-size", "1"])]:
        result = predict(model, "--data-dir", data_dir, "--out", str(out / name), *flags)
        assert result.returncode == 0, result.stderr
        scores[name] = json_lines(result)[0]
        labels[name] = open(out / name).read()
    assert scores["tta"]["test_acc"] == pytest.approx(last["tta_test_acc"]) and scores["tta"]["tta_level"] == 2
    assert scores["plain"]["test_acc"] == pytest.approx(last["test_acc"]) and scores["plain"]["tta_level"] == 0
    assert labels["onnx"] == labels["tta"] == labels["single"]  # ONNX Runtime; one image at a time


def small_dataset(n=64, seed=0):
    from data import prepare

    rng = np.random.RandomState(seed)
    x = rng.randint(0, 256, size=(n, 3, 32, 32)).astype(np.uint8)
    y = rng.randint(0, 3, size=n)
    return prepare(x, y, x[:16], y[:16], classes=[0, 1, 2], class_names=["a", "b", "c"])


def fast94_state(ctx, epochs=2, batch_size=16):
    config = RunConfig(recipe="fast94", **dict(RECIPE.defaults(), epochs=epochs, batch_size=batch_size))
    dataset = small_dataset()
    return build_state(config, dataset, ctx, distributed.connect("device", {})), dataset


def whitening_bias(state):
    return [b.asnumpy() for b in state.net.whitening.bias.list_data()]


def test_the_whitening_bias_trains_in_the_recipes_first_epochs_only_and_its_padding_stays_zero():
    state, dataset = fast94_state([mx.cpu()])
    state.hooks.whiten_bias_epochs = 1
    state.hooks.lookahead.every = state.hooks.lookahead.total_updates = 10 ** 9  # its averaging
    # moves the bias too (as airbench94's does): here only the optimizer's updates should
    before = whitening_bias(state)[0]
    train_one_epoch(state, dataset.train_x, dataset.train_y, 16)
    after_first = whitening_bias(state)[0]
    assert np.abs(after_first[:24] - before[:24]).max() > 0 and not after_first[24:].any()
    weights = state.net.features[2].conv1.weight.data().asnumpy()
    train_one_epoch(state, dataset.train_x, dataset.train_y, 16)
    np.testing.assert_array_equal(whitening_bias(state)[0], after_first)  # no gradient from epoch 1
    assert state.net.whitening.bias.grad_req == "null"
    assert np.abs(state.net.features[2].conv1.weight.data().asnumpy() - weights).max() > 0  # the rest trains


def test_without_the_whitening_bias_gradient_the_rest_trains_as_with_a_zero_rate():
    # The bias's gradient is switched off to skip work in the backward pass: the other updates
    # must be those of a run that keeps the gradient and gives the bias a learning rate of 0.
    states = [fast94_state([mx.cpu()])[0] for _ in range(2)]
    dataset = small_dataset()
    zero_rate = states[1].hooks
    zero_rate.start_epoch = lambda epoch: setattr(zero_rate.net.whitening.bias, "lr_mult",
                                                  1.0 if epoch < zero_rate.whiten_bias_epochs else 0.0)
    for state in states:
        state.hooks.whiten_bias_epochs = 1
        for _ in range(2):
            train_one_epoch(state, dataset.train_x, dataset.train_y, 16)
    assert states[1].net.whitening.bias.grad_req == "write"
    for mine, other in zip(*(s.net.collect_params().values() for s in states)):
        np.testing.assert_allclose(mine.data().asnumpy(), other.data().asnumpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=mine.name)


def test_on_several_devices_the_copies_stay_equal():
    ctx = [mx.cpu(0), mx.cpu(1)]  # stand-ins for two GPUs: distinct devices to MXNet
    state, dataset = fast94_state(ctx)
    train_one_epoch(state, dataset.train_x, dataset.train_y, 16)
    for param in state.net.collect_params().values():
        if not param.name.endswith(("running_mean", "running_var")):  # each device's own batches
            first, second = (d.asnumpy() for d in param.list_data())
            np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-7, err_msg=param.name)
    assert not any(b[24:].any() for b in whitening_bias(state))


def test_seeds_run_the_recipe_once_per_seed(data_dir, tmp_path):
    result = run_cli("--recipe", "fast94", "--seeds", "1,2", "--epochs", "0.5", "--data-dir", data_dir, *SMALL,
                             "--no-comet", "--output-dir", str(tmp_path / "group"))
    assert result.returncode == 0, result.stderr
    lines = json_lines(result)
    assert [line["epoch"] for line in lines] == [0, 0] and all("tta_test_acc" in line for line in lines)
    assert lines[0]["train_loss"] != lines[1]["train_loss"]  # two seeds, two runs
    for seed in (1, 2):
        with open(tmp_path / ("group-seed%d" % seed) / "config.json") as f:
            config = json.load(f)
        assert (config["seed"], config["recipe"], config["epochs"]) == (seed, "fast94", 0.5)


@pytest.mark.skipif(not cpu.read().flags & set(cpu.BF16_FLAGS),
                    reason="this CPU has neither AVX512_BF16 nor AMX")
def test_the_recipe_trains_in_bfloat16_and_exports_in_float32(data_dir, tmp_path):
    export = str(tmp_path / "exported")
    result = run_cli_process("--recipe", "fast94", "--amp", "--epochs", "1", "--data-dir", data_dir, *SMALL, "--no-comet",
                             "--output-dir", str(tmp_path / "run"), "--export", export)
    assert result.returncode == 0, result.stderr
    line = json_lines(result)[-1]
    assert line["test_acc"] > 0.5 and "tta_test_acc" in line
    with open(export + "-meta.json") as f:
        meta = json.load(f)
    assert meta["config"]["precision"] == "bfloat16" and meta["tta_level"] == 2
    predicted = predict(export, "--data-dir", data_dir, "--out", str(tmp_path / "labels"))
    assert predicted.returncode == 0, predicted.stderr
    # The export computes in float32: within a few of 120 test images of the bfloat16 evaluation.
    assert abs(json_lines(predicted)[0]["test_acc"] - line["tta_test_acc"]) <= 3 / 120
