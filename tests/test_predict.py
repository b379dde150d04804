"""Export and predict.py: predictions from the export equal the checkpoint's and the trained net's."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from helpers import predict, run_cli, run_command


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """One epoch (predictions not yet saturated), with a checkpoint and an export."""
    folder = tmp_path_factory.mktemp("trained")
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "1", "--quiet",
                     "--model-prefix", str(folder / "ckpt"), "--export", str(folder / "export"))
    assert result.returncode == 0, result.stderr
    return folder, json.loads(result.stdout.splitlines()[-1])


def test_export_writes_symbol_params_and_what_a_predictor_needs(trained):
    folder, _ = trained
    meta = json.load(open(folder / "export-meta.json"))
    assert (folder / "export-symbol.json").is_file() and (folder / "export-0000.params").is_file()
    assert (folder / "export.onnx").is_file()
    assert meta["class_names"] == ["airplane", "automobile"] and len(meta["mean"]) == 3
    assert meta["batch_statistics"] is False  # the population-statistics form (test_population.py)
    # Trained with the CPU-only fused BatchNorm+ReLU, exported without it: runs on any MXNet build.
    graph = (folder / "export-symbol.json").read_text()
    assert "BatchNormWithReLU" not in graph and '"Activation"' in graph
    assert graph.count('"use_global_stats": "True"') == 4


def test_export_and_checkpoint_predict_the_test_set_as_measured_after_training(trained, data_dir, tmp_path):
    folder, last_epoch = trained
    meta = json.load(open(folder / "export-meta.json"))
    expected = {"export": meta["test_acc_population_statistics"],
                "export.onnx": meta["test_acc_population_statistics"],
                "ckpt-0001": last_epoch["test_acc"]}  # batch statistics, as training evaluated
    outputs = {}
    for model, accuracy in expected.items():
        out = tmp_path / ("%s.preds" % model)
        result = predict(str(folder / model), "--data-dir", data_dir, "--out", str(out))
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["test_images"] == 80 and summary["test_acc"] == pytest.approx(accuracy)
        outputs[model] = out.read_text().split()
        assert len(outputs[model]) == 80 and set(outputs[model]) <= {"0", "1"}
    assert outputs["export"] == outputs["export.onnx"]
    assert meta["test_acc_batch_statistics"] == last_epoch["test_acc"]


def test_onnx_runtime_and_mxnet_agree_on_every_test_image(trained, data_dir):
    folder, last_epoch = trained
    result = run_command("tools/compare_runtimes.py", folder / "export", "--data-dir", data_dir, "--batch-size", "16")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["test_images"] == 80 and report["predictions_differing"] == 0
    assert report["max_logit_diff"] < 1e-4
    population = json.load(open(folder / "export-meta.json"))["test_acc_population_statistics"]
    assert report["onnx_test_acc"] == report["mxnet_test_acc"] == pytest.approx(population)
    assert report["mxnet_images_per_sec"] > 0 and report["onnx_images_per_sec"] > 0


def test_images_of_any_size_are_classified_with_a_probability(trained, batch_files, tmp_path):
    folder, _ = trained
    raw = np.frombuffer(batch_files["test_batch.bin"], dtype=np.uint8).reshape(-1, 3073)[:6]
    paths = []
    for i, record in enumerate(raw):
        img = Image.fromarray(record[1:].reshape(3, 32, 32).transpose(1, 2, 0)).resize((48, 40))
        paths.append(str(tmp_path / ("img%d.%s" % (i, "png" if i % 2 else "jpg"))))
        img.save(paths[-1])
    lines = {}
    for model in ("export", "ckpt-0001", "export.onnx"):
        result = predict(str(folder / model), *paths)
        assert result.returncode == 0, result.stderr
        lines[model] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines["export"]] == paths
    # The export (population statistics) in MXNet and in ONNX Runtime give the same answers; the
    # checkpoint (batch statistics, these 6 images normalised together) answers for each too.
    for a, b, c in zip(lines["export"], lines["export.onnx"], lines["ckpt-0001"]):
        assert a["input"] == b["input"] == c["input"] and a["class"] == b["class"]
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
        for line in (a, c):
            assert line["class"] in ("airplane", "automobile") and 0.5 <= line["probability"] <= 1


@pytest.mark.parametrize("args, message", [
    (["nowhere/model", "x.png"], "is neither an export"),
    (["{folder}/ckpt-0007", "x.png"], "no checkpoint"),
    (["{folder}/export", "{folder}/export-meta.json"], "export-meta.json is not a readable image"),
    (["{folder}/other.onnx", "x.png"], "other.onnx does not exist"),
])
def test_bad_input_is_one_clear_error(trained, args, message):
    folder, _ = trained
    result = predict(*[a.format(folder=folder) for a in args])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_an_onnx_file_on_a_gpu_is_a_usage_error(trained, usage):
    from commands import predict as command

    folder, _ = trained
    assert "argument --num-gpus: an ONNX file runs in the CPU build of ONNX Runtime" in usage(
        folder / "export.onnx", "x.png", "--num-gpus", "1", main=command.main)


# ----------------------------------------------------------------------------------------------
# Fine-tuning: a trained model's features, a new output layer for other classes

def saved_params(path):
    import mxnet as mx

    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


@pytest.mark.parametrize("source", ["ckpt-0001", "export"])
def test_finetuning_starts_from_the_source_features_with_a_new_output_layer(trained, data_dir, tmp_path, source):
    folder, _ = trained
    prefix = str(tmp_path / "ft")
    # lr 0: the weights after one epoch are exactly those the run started from.
    result = run_cli("--data-dir", data_dir, "--classes", "2,0,1", "--epochs", "1", "--lr", "0", "--quiet",
                     "--finetune", str(folder / source), "--model-prefix", prefix)
    assert result.returncode == 0, result.stderr
    before, after = saved_params(str(folder / "ckpt-0001.params")), saved_params(prefix + "-0001.params")
    features = [k for k in before if k.startswith("features.")]
    assert len(features) == 23 and sum(k.endswith(".weight") for k in features) == 7  # + BN constants
    for k in features:
        np.testing.assert_array_equal(after[k], before[k])
    assert after["output.0.weight"].shape == (3, 128) and before["output.0.weight"].shape == (2, 128)


def test_frozen_features_stay_put_while_the_output_layer_learns(trained, data_dir, tmp_path):
    folder, _ = trained
    prefix = str(tmp_path / "frozen")
    result = run_cli("--data-dir", data_dir, "--classes", "1,2", "--epochs", "2", "--quiet",
                     "--finetune", str(folder / "ckpt-0001"), "--freeze-features", "--model-prefix", prefix)
    assert result.returncode == 0, result.stderr
    before, first, last = (saved_params(p) for p in (str(folder / "ckpt-0001.params"),
                                                     prefix + "-0001.params", prefix + "-0002.params"))
    for k in before:
        if k.startswith("features."):
            np.testing.assert_array_equal(last[k], before[k])
    assert not np.array_equal(first["output.0.weight"], last["output.0.weight"])
    assert json.loads(result.stdout.splitlines()[-1])["test_acc"] > 0.9


def test_bad_finetuning_flags_are_one_clear_error(data_dir, usage):
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--quiet", "--finetune", "nowhere/x")
    assert result.returncode == 1 and "neither an export" in result.stderr and "Traceback" not in result.stderr
    assert "--freeze-features goes with --finetune" in usage("--data-dir", data_dir, "--freeze-features")


@pytest.mark.parametrize("input_size", [32, 28])
def test_a_jpeg_of_another_size_reaches_the_network_bit_identical_in_training_and_prediction(tmp_path, input_size):
    # One 100x75 noise JPEG per class and split; training's image-folder loader and predict.py
    # must decode, resize, crop and normalise it to exactly the same network input.
    from commands import predict
    from data import load_image_folder, prepare
    from data.pipeline import eval_order
    from data import model_input

    rng = np.random.RandomState(7)
    paths = {}
    for split in ("train", "test"):
        for name in ("a", "b"):
            os.makedirs(tmp_path / split / name)
            path = str(tmp_path / split / name / "photo.jpg")
            Image.fromarray(rng.randint(0, 256, size=(75, 100, 3)).astype(np.uint8)).save(path, quality=90)
            paths[split, name] = path
    dataset = prepare(*load_image_folder(str(tmp_path)), classes=[0, 1], class_names=["a", "b"],
                      input_size=input_size)
    meta = {"mean": dataset.mean.tolist(), "std": dataset.std.tolist(), "input_size": input_size}
    in_prediction, names = predict.read_images([paths["test", "a"], paths["test", "b"]])
    assert in_prediction.shape == (2, 3, 32, 32) and names == [paths["test", "a"], paths["test", "b"]]
    order = eval_order(2)  # the order in which training put its test set
    np.testing.assert_array_equal(model_input(in_prediction, meta)[order], dataset.test_x.asnumpy())


def test_a_truncated_bin_file_is_one_clear_error(trained, batch_files, tmp_path):
    folder, _ = trained
    path = tmp_path / "short.bin"
    path.write_bytes(batch_files["test_batch.bin"][:3073 * 4 - 5])
    result = predict(str(folder / "export"), str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip() == ("error: %s has 12287 bytes: not a whole number of CIFAR-10 records "
                                     "of 3073 bytes." % path)


def test_a_damaged_checkpoint_is_one_error_that_advises_what_prediction_can_do(trained, tmp_path):
    folder, _ = trained
    for ext in ("params", "states", "json"):
        (tmp_path / ("ckpt-0001." + ext)).write_bytes((folder / ("ckpt-0001." + ext)).read_bytes())
    os.truncate(tmp_path / "ckpt-0001.params", 100)
    image = tmp_path / "x.bin"
    image.write_bytes(bytes(3073))
    result = predict(str(tmp_path / "ckpt-0001"), str(image))
    assert result.returncode == 1 and result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: %s is damaged" % (tmp_path / "ckpt-0001.params"))
    assert result.stderr.strip().endswith("predict with another checkpoint or an export")


def test_an_export_of_a_format_this_code_cannot_read_is_refused_with_one_line(trained, tmp_path):
    folder, _ = trained
    for name in ("export-symbol.json", "export-0000.params"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    meta = json.load(open(folder / "export-meta.json"))
    json.dump(dict(meta, format=meta["format"] + 1), open(tmp_path / "export-meta.json", "w"))
    image = tmp_path / "x.bin"
    image.write_bytes(bytes(3073))
    result = predict(str(tmp_path / "export"), str(image))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == ("error: %s is an export of format 2; this code reads format 1: use the "
                                     "version of this project that wrote it" % (tmp_path / "export-meta.json"))


def test_a_batch_size_of_0_is_a_usage_error_in_plain_words(trained, usage):
    from commands import predict as command

    folder, _ = trained
    assert "argument --batch-size: expected a whole number of 1 or more, got '0'" in usage(
        folder / "export", "x.png", "--batch-size", "0", main=command.main)
