"""Population statistics: the spec'd network's form that predicts every image on its own, as
measured, kept, exported (MXNet and ONNX), reported, and made from any checkpoint."""
import json

import mxnet as mx
import numpy as np
import pytest

from helpers import export_network as export, np_conv, np_maxpool2, predict, run_cli, run_command, trained_a_little, weights_in_spec_order
from models import SpecResNet
from training import population, saved_model

SMALL = (4, 6, 6, 8)  # widths of a small spec'd network: numpy can follow it quickly


def np_batch_norm_inputs(x, weights):
    """The input of each BatchNorm of the spec'd network for the batch x, in float64 numpy."""
    c1, c2, c3, c4, s2, s3, s4, _ = weights
    inputs = []

    def block(x, w3, w1=None):
        z = np_conv(x, w3)
        inputs.append(z)
        mean, var = z.mean(axis=(0, 2, 3), keepdims=True), z.var(axis=(0, 2, 3), keepdims=True)
        y = np.maximum((z - mean) / np.sqrt(var + 1e-5), 0)
        return y + np_conv(x, w1) if w1 is not None else y

    x = block(x, c1)
    x = np_maxpool2(block(x, c2, s2))
    x = np_maxpool2(block(x, c3, s3))
    block(x, c4, s4)
    return inputs


def test_the_stored_statistics_are_the_batch_weighted_mean_and_biased_variance_of_each_input():
    mx.random.seed(0)
    net = SpecResNet(2, widths=SMALL)
    net.initialize()
    net.hybridize(static_alloc=True, static_shape=True)
    x = np.random.RandomState(3).normal(0.4, 1.5, size=(20, 3, 32, 32))
    statistics, _ = population.measure(net, mx.nd.array(x), 8, mx.cpu())  # batches of 8, 8, 4

    weights = weights_in_spec_order(net)
    per_batch = [(len(part), np_batch_norm_inputs(part, weights)) for part in (x[:8], x[8:16], x[16:])]
    names = [bn.running_mean.name.split("_", 1)[1] for bn in net.batch_norms()]
    for k, name in enumerate(names):
        mean = sum(n * z[k].mean(axis=(0, 2, 3)) for n, z in per_batch) / 20
        var = sum(n * z[k].var(axis=(0, 2, 3)) for n, z in per_batch) / 20
        np.testing.assert_allclose(statistics[name], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(statistics[name.replace("running_mean", "running_var")], var,
                                   rtol=1e-4, atol=1e-5)
    assert len(statistics) == 2 * 4
    # The pass changes no weight and leaves the network hybridized as training runs it.
    assert [w.tolist() for w in weights_in_spec_order(net)] == [w.tolist() for w in weights]
    assert net._active


@pytest.fixture(scope="module")
def population_export(tmp_path_factory):
    """A spec'd network after a few steps, its population form exported (MXNet files and ONNX)."""

    net = trained_a_little("spec-resnet")
    x = mx.nd.array(np.random.RandomState(5).normal(size=(40, 3, 32, 32)))
    statistics, _ = population.measure(net, x, 16, mx.cpu())
    deployed = population.deployment_network(net, statistics, 3, mx.cpu())
    path = str(tmp_path_factory.mktemp("population") / "ex")
    written, no_onnx = export(deployed, "spec-resnet", path)
    assert no_onnx is None
    return path


@pytest.mark.parametrize("runtime", ["mxnet", "onnx"])
def test_an_image_alone_gets_the_logits_it_gets_inside_any_batch(population_export, runtime):
    model, meta = saved_model.load(population_export + (".onnx" if runtime == "onnx" else ""))
    assert meta["batch_statistics"] is False
    rng = np.random.RandomState(0)
    image = rng.normal(size=(1, 3, 32, 32)).astype(np.float32)
    alone = model(image)[0]
    for companions in (rng.normal(size=(7, 3, 32, 32)), rng.normal(loc=3.0, size=(30, 3, 32, 32))):
        inside = model(np.concatenate([companions.astype(np.float32), image]))[-1]
        np.testing.assert_allclose(inside, alone, atol=1e-5, rtol=0)


def test_the_onnx_file_of_the_population_form_uses_standard_batch_normalization(population_export):
    import onnx

    ops = [node.op_type for node in onnx.load(population_export + ".onnx").graph.node]
    assert ops.count("BatchNormalization") == 4 and "ReduceMean" not in ops
    in_mxnet, _ = saved_model.load(population_export)
    in_onnx, _ = saved_model.load(population_export + ".onnx")
    x = np.random.RandomState(1).normal(size=(9, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(in_onnx(x), in_mxnet(x), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------------------
# Through the commands

@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """2 epochs with checkpoints, the default export (population) and a batch-statistics one."""
    folder = tmp_path_factory.mktemp("trained")
    common = ["--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--no-comet"]
    result = run_cli(*common, "--model-prefix", str(folder / "ckpt"), "--export", str(folder / "pop"),
                     "--output-dir", str(folder / "run"))
    assert result.returncode == 0, result.stderr
    batch = run_cli(*common, "--quiet", "--export", str(folder / "batch"), "--export-batch-statistics")
    assert batch.returncode == 0, batch.stderr
    return folder, result


def test_training_keeps_the_statistics_with_the_last_checkpoint_and_reports_both_accuracies(trained):
    folder, result = trained
    record = json.load(open(folder / "ckpt-0002.json"))
    assert set(record["files"]) == {"params", "states", "bnstats"}
    assert "bnstats" not in json.load(open(folder / "ckpt-0001.json"))["files"]
    said = [line for line in result.stderr.splitlines() if line.startswith("population statistics:")]
    assert len(said) == 1 and "one pass over 400 training images" in said[0]
    meta = json.load(open(folder / "pop-meta.json"))
    status = json.load(open(folder / "run" / "status.json"))
    last = json.loads(result.stdout.splitlines()[-1])
    assert meta["batch_statistics"] is False and json.load(open(folder / "batch-meta.json"))["batch_statistics"]
    assert meta["test_acc_batch_statistics"] == last["test_acc"] == status["test_acc_batch_statistics"]
    assert meta["test_acc_batch_statistics_batch_size"] == 128
    assert 0.5 < meta["test_acc_population_statistics"] == status["test_acc_population_statistics"]


def test_the_population_export_predicts_the_same_at_every_batch_size(trained, data_dir, tmp_path):
    folder, _ = trained
    meta = json.load(open(folder / "pop-meta.json"))
    for batch_size in ("1", "7", "128"):
        out = tmp_path / ("preds-" + batch_size)
        result = predict(str(folder / "pop"), "--data-dir", data_dir, "--batch-size", batch_size, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["test_acc"] == pytest.approx(meta["test_acc_population_statistics"])
        assert out.read_text() == (tmp_path / "preds-1").read_text()


def test_a_batch_statistics_model_given_fewer_images_than_a_batch_warns_once(trained, batch_files, tmp_path):
    folder, _ = trained
    images = tmp_path / "three.bin"
    images.write_bytes(batch_files["test_batch.bin"][:3 * 3073])
    for model in ("batch", "ckpt-0002"):
        result = predict(str(folder / model), str(images))
        assert result.returncode == 0 and len(result.stdout.splitlines()) == 3, result.stderr
        assert result.stderr.startswith("warning: this model normalises with the statistics of the batch")
        assert len(result.stderr.strip().splitlines()) == 1 and "export_model.py" in result.stderr
    quiet = predict(str(folder / "pop"), str(images))
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_export_model_measures_a_checkpoint_without_statistics_and_keeps_them(trained, data_dir, tmp_path):
    folder, _ = trained
    for ext in ("params", "states", "json"):  # epoch 1: saved before training ended, no statistics
        (tmp_path / ("ckpt-0001." + ext)).write_bytes((folder / ("ckpt-0001." + ext)).read_bytes())
    command = ["export_model.py", tmp_path / "ckpt-0001", tmp_path / "ex", "--data-dir", data_dir]
    first = run_command(*command)
    assert first.returncode == 0, first.stderr
    assert "population statistics: one pass over 400 training images" in first.stderr
    assert "bnstats" in json.load(open(tmp_path / "ckpt-0001.json"))["files"]
    again = run_command(*command, "--quiet")
    assert again.returncode == 0 and again.stderr == ""  # the kept statistics, no second pass
    meta = json.load(open(tmp_path / "ex-meta.json"))
    assert meta["batch_statistics"] is False and meta["class_names"] == ["airplane", "automobile"]
    assert {"test_acc_batch_statistics", "test_acc_population_statistics"} <= set(meta)
    # The last checkpoint's export from export_model.py predicts as training's own export.
    second = run_command("export_model.py", folder / "ckpt-0002", tmp_path / "last", "--quiet")
    assert second.returncode == 0, second.stderr
    predictions = []
    for model in (folder / "pop", tmp_path / "last"):
        result = predict(str(model), "--data-dir", data_dir, "--out", str(tmp_path / "p"))
        assert result.returncode == 0, result.stderr
        predictions.append((tmp_path / "p").read_text())
    assert predictions[0] == predictions[1]


def test_export_model_on_data_that_is_not_the_checkpoints_is_one_clear_error(trained, tmp_path, batch_files):
    from helpers import synthetic_records, write_files

    folder, _ = trained
    for ext in ("params", "states", "json"):
        (tmp_path / ("ckpt-0001." + ext)).write_bytes((folder / ("ckpt-0001." + ext)).read_bytes())
    other = dict(batch_files, **{"data_batch_1.bin": synthetic_records(99)})
    write_files(tmp_path / "other" / "cifar-10-batches-bin", other)
    result = run_command("export_model.py", tmp_path / "ckpt-0001", tmp_path / "ex",
                         "--data-dir", tmp_path / "other", "--quiet")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: the cifar10 data found in %s is not what this model was trained on"
                                    % (tmp_path / "other"))
    assert not (tmp_path / "ex-meta.json").exists()


def test_export_batch_statistics_without_export_is_a_usage_error(data_dir, usage):
    assert "--export-batch-statistics would have no effect" in usage("--data-dir", data_dir, "--export-batch-statistics")
