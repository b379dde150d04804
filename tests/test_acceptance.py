"""The spec's acceptance: the 2-class task on the real CIFAR-10 images, > 95% after 5 epochs.

The real CIFAR-10 is found wherever its user keeps it, in this order: $CIFAR10_DATA_DIR (a folder
as --data-dir takes it), the default data folder ($MXNET_HOME/datasets/cifar10, where the first
run downloads it), or a JPEG copy of its images with the make_cifar10_bin.py script that rebuilds
the binary files ($CIFAR10_JPEG_DIR, by default ../shared/data beside the clone). Skipped, saying
where it looked, where none is there. About a minute on 2 cores. The run's export (the
population-statistics form) is checked on all 2,000 test images: ONNX Runtime against MXNet, and
one image at a time against the batch-statistics accuracy.
"""
import json
import os
import subprocess
import sys

import pytest

from helpers import REPO, run_command, run_script

JPEG_COPY = os.environ.get("CIFAR10_JPEG_DIR", os.path.join(REPO, os.pardir, "shared", "data"))


def binary_folder(candidate):
    """candidate, if it holds the official binary files (as --data-dir takes a folder), else None."""
    from data.cifar import CIFAR10, find_batch_dir

    return candidate if candidate and os.path.isdir(candidate) and find_batch_dir(CIFAR10, candidate) else None


@pytest.fixture(scope="module")
def real_cifar10(tmp_path_factory):
    from data import default_data_dir

    found = binary_folder(os.environ.get("CIFAR10_DATA_DIR")) or binary_folder(default_data_dir())
    if found:
        return found
    builder = os.path.join(JPEG_COPY, "make_cifar10_bin.py")
    if not os.path.isfile(builder):
        pytest.skip("no real CIFAR-10: not in $CIFAR10_DATA_DIR, not in %s, no JPEG copy with its "
                    "builder at %s" % (default_data_dir(), builder))
    out = tmp_path_factory.mktemp("real-cifar10")
    subprocess.run([sys.executable, builder, str(out)], check=True, capture_output=True, timeout=600)
    return str(out)


@pytest.mark.slow
def test_two_class_task_exceeds_95_percent_after_5_epochs_and_its_export_predicts_each_image_alone(real_cifar10, tmp_path):
    result = run_script("train_cifar10.py", "--data-dir", real_cifar10, "--classes", "0,1", "--quiet",
                        "--export", str(tmp_path / "spec"), timeout=1800)
    assert result.returncode == 0, result.stderr
    print(result.stdout)  # the per-epoch lines, for the CI log
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1, 2, 3, 4]
    assert lines[-1]["test_acc"] > 0.95
    meta = json.load(open(tmp_path / "spec-meta.json"))
    print({k: v for k, v in meta.items() if k.startswith("test_acc")})
    assert meta["batch_statistics"] is False and meta["test_acc_batch_statistics"] == lines[-1]["test_acc"]
    # ONNX Runtime in batches of 128 on every test image: the exported network's predictions
    compared = run_command("tools/compare_runtimes.py", tmp_path / "spec", "--data-dir", real_cifar10,
                           "--batch-size", "128")
    assert compared.returncode == 0, compared.stderr
    print(compared.stdout)
    report = json.loads(compared.stdout)
    assert report["test_images"] == 2000 and report["predictions_differing"] == 0
    assert report["max_logit_diff"] < 1e-4
    population = meta["test_acc_population_statistics"]
    assert report["onnx_test_acc"] == report["mxnet_test_acc"] == pytest.approx(population)
    # The population form predicts each image on its own: one at a time as in batches of 128
    # (above), within 0.01 of the spec's batch-statistics accuracy at 128.
    alone = run_command("predict.py", tmp_path / "spec", "--data-dir", real_cifar10, "--batch-size", "1",
                        "--out", tmp_path / "preds")
    assert alone.returncode == 0, alone.stderr
    print(alone.stdout)
    assert json.loads(alone.stdout)["test_acc"] == pytest.approx(population)
    assert abs(population - lines[-1]["test_acc"]) <= 0.01
