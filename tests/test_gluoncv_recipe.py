"""GluonCV's recipe options: zoo models, augmentation, step and warmup schedules, NAG, weight decay."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms

import models
from helpers import run_cli, run_command
from data.pipeline import PAD, augment, normalize
from training.schedules import LinearDecay, StepDecay, make_schedule

MEAN = np.array([0.49, 0.48, 0.45], dtype=np.float32)
STD = np.array([0.25, 0.24, 0.26], dtype=np.float32)


def gluon_reference(image_hwc, top, left, flip):
    """GluonCV's per-image pipeline with the crop and flip given: zero-pad 4, crop, flip,
    ToTensor, Normalize (gluoncv's RandomCrop pads with np.pad and crops with mx.image)."""
    padded = mx.nd.array(np.pad(image_hwc, ((PAD, PAD), (PAD, PAD), (0, 0))), dtype=np.uint8)
    crop = mx.image.fixed_crop(padded, left, top, 32, 32)
    if flip:
        crop = mx.nd.flip(crop, axis=1)
    return transforms.Normalize(MEAN.tolist(), STD.tolist())(transforms.ToTensor()(crop)).asnumpy()


def test_augment_is_gluoncvs_crop_and_flip_drawn_per_image():
    raw = np.random.RandomState(0).randint(0, 256, size=(64, 3, 32, 32)).astype(np.uint8)
    out = augment(mx.nd.array(normalize(raw, MEAN, STD)), MEAN, STD, np.random.RandomState(7)).asnumpy()
    draws = np.random.RandomState(7)  # the same draws, in augment's order
    top, left = draws.randint(0, 2 * PAD + 1, size=64), draws.randint(0, 2 * PAD + 1, size=64)
    flip = draws.rand(64) < 0.5
    for i in range(64):
        expected = gluon_reference(raw[i].transpose(1, 2, 0), top[i], left[i], flip[i])
        np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-5, err_msg="image %d" % i)
    assert 16 < flip.sum() < 48 and len(set(top)) > 5 and len(set(left)) > 5


def test_step_and_warmup_schedules_are_functions_of_the_update_count():
    warm = make_schedule("step", 0.1, epochs=4, updates_per_epoch=10, factor=0.1, decay_epochs=[2, 3],
                         warmup_epochs=1)
    assert [warm(k) for k in (1, 5, 10)] == pytest.approx([0.01, 0.05, 0.1])  # warmup to 0.1
    assert [warm(k) for k in (11, 20, 21, 30, 31, 40)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert [StepDecay([5], 0.5, base_lr=1.0)(k) for k in (5, 6)] == [1.0, 0.5]
    linear = LinearDecay(30, base_lr=0.3, warmup_updates=10)
    assert [linear(k) for k in (10, 11, 21, 30, 31)] == pytest.approx([0.3, 0.3, 0.15, 0.015, 0.0])
    assert make_schedule("linear", 0.1, 5, 79)(1) == LinearDecay(5 * 79, 0.1)(1)  # the spec's default
    every = make_schedule("step", 1.0, epochs=4, updates_per_epoch=2, factor=0.5, decay_period=1)
    assert [every(k) for k in range(1, 9)] == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert {make_schedule("constant", 0.05, 3, 10)(k) for k in (1, 15, 30, 31)} == {0.05}


def test_a_gluoncv_model_trains_with_the_recipe_exports_and_predicts(data_dir, tmp_path):
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "3", "--quiet",
                     "--model", "cifar_resnet20_v1", "--augment", "--optimizer", "nag", "--wd", "1e-4",
                     "--lr-mode", "step", "--lr-decay-epoch", "2", "--lr-factor", "0.5",
                     "--warmup-epochs", "1", "--batch-size", "32", "--log-interval", "5",
                     "--output-dir", str(tmp_path / "run"), "--model-prefix", str(tmp_path / "ck"),
                     "--export", str(tmp_path / "ex"), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["lr"] for r in lines] == pytest.approx([0.1, 0.1, 0.05])  # warmup, then x0.5 from epoch 2
    assert all(np.isfinite(r["train_loss"]) for r in lines)
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert (config["model"], config["nesterov"], config["weight_decay"]) == ("cifar_resnet20_v1", True, 1e-4)
    assert json.load(open(tmp_path / "ex-meta.json"))["batch_statistics"] is False
    for model in ("ex", "ck-0003"):
        predicted = run_command("predict.py", tmp_path / model, "--data-dir", data_dir, "--out", tmp_path / "preds")
        assert predicted.returncode == 0, predicted.stderr[-2000:]
        assert json.loads(predicted.stdout)["test_acc"] == pytest.approx(lines[-1]["test_acc"])


@pytest.mark.parametrize("args, message", [
    (["--model", "resnet_nonexistent"], "not %s, or a GluonCV model" % ", ".join(models.names())),
    (["--lr-mode", "step"], "--lr-mode step needs --lr-decay-epoch"),
    (["--lr-decay-epoch", "2"], "--lr-decay-epoch and --lr-decay-period go with --lr-mode step"),
    (["--warmup-epochs", "5"], "--warmup-epochs 5 leaves no epoch to train"),
    (["--optimizer", "adam"], "argument --optimizer: invalid choice"),
])
def test_bad_recipe_flags_are_one_clear_error(args, message, data_dir, usage):
    assert message in usage("--data-dir", data_dir, *args)
