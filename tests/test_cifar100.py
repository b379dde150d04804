"""CIFAR-100 in its official binary layout, built here: parsing, labels, subsetting, errors."""
import hashlib
import json
import os

import numpy as np
import pytest

from helpers import CIFAR100_FEW as FEW, COARSE_NAMES, FINE_NAMES, make_tar_gz, run_cli
from data import DataError
from data.cifar import CIFAR100, class_names, download_and_extract, load


@pytest.fixture(scope="module")
def cifar100_dir(cifar100_folder):
    return str(cifar100_folder)  # read-only


def test_fine_and_coarse_labels_and_their_names(cifar100_dir):
    train_x, train_y, test_x, test_y = load(CIFAR100, cifar100_dir, url="http://127.0.0.1:9/unused")
    assert train_x.shape == (50000, 3, 32, 32) and test_x.shape == (10000, 3, 32, 32)
    assert train_y.max() == 99 and sorted(set(train_y[:FEW])) == [0, 1, 5]
    coarse = load(CIFAR100, cifar100_dir, url="http://127.0.0.1:9/unused", label="coarse")[1]
    np.testing.assert_array_equal(coarse, train_y // 5)
    np.testing.assert_array_equal(load(CIFAR100, cifar100_dir, label="coarse")[0], train_x)
    batch_dir = os.path.join(cifar100_dir, "cifar-100-binary")
    assert class_names(CIFAR100, batch_dir) == FINE_NAMES
    assert class_names(CIFAR100, batch_dir, "coarse") == COARSE_NAMES


def test_the_archive_is_downloaded_verified_and_extracted(tmp_path, http_server, cifar100_files):
    blob = make_tar_gz([("cifar-100-binary/" + n, c) for n, c in sorted(cifar100_files.items())])
    url = http_server.serve("/cifar-100-binary.tar.gz", blob)
    cache = str(tmp_path / "cache")
    first = load(CIFAR100, cache, url=url, md5=hashlib.md5(blob).hexdigest(), progress=False)
    assert sorted(os.listdir(os.path.join(cache, "cifar-100-binary"))) == sorted(cifar100_files)
    assert os.path.isfile(os.path.join(cache, "cifar-100-binary.tar.gz"))
    second = load(CIFAR100, cache, url=url, progress=False)  # from the extracted files, no download
    assert len(http_server.requests) == 1
    np.testing.assert_array_equal(first[3], second[3])
    with pytest.raises(DataError, match="has md5 %s, expected 0123" % hashlib.md5(blob).hexdigest()):
        load(CIFAR100, str(tmp_path / "other"), url=url, md5="0123" * 8, progress=False)
    assert not os.path.exists(tmp_path / "other" / "cifar-100-binary.tar.gz")


def test_an_archive_without_the_test_file_is_rejected(tmp_path, cifar100_files):
    blob = make_tar_gz([("cifar-100-binary/train.bin", cifar100_files["train.bin"]),
                        ("../escape.bin", b"x")])
    with open(tmp_path / "cifar-100-binary.tar.gz", "wb") as f:
        f.write(blob)
    with pytest.raises(DataError, match="does not contain cifar-100-binary/test.bin"):
        download_and_extract(str(tmp_path), url="http://127.0.0.1:9/x",
                             md5=hashlib.md5(blob).hexdigest(), layout=CIFAR100)
    assert sorted(os.listdir(tmp_path)) == ["cifar-100-binary.tar.gz"]


@pytest.mark.parametrize("labels, classes, names", [
    ([], "0,1", ["fine00", "fine01"]),
    (["--coarse-labels"], "0,1", ["coarse00", "coarse01"]),
])
def test_train_cifar10_trains_on_cifar100_subsets(cifar100_dir, tmp_path, labels, classes, names):
    result = run_cli("--dataset", "cifar100", "--data-dir", cifar100_dir, *labels, "--classes", classes,
                     "--epochs", "2", "--quiet", "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["class_names"] == names and config["dataset"] == "cifar100"
    # fine: 2 of every 3 FEW records (labels 0, 1); coarse: all FEW records (coarse 0 and 1)
    assert config["train_images"] == (FEW if labels else 2 * FEW // 3)
    assert json.loads(result.stdout.splitlines()[-1])["test_acc"] > 0.9


def test_coarse_labels_are_only_for_cifar100(cifar100_dir, usage):
    assert "--coarse-labels goes with --dataset cifar100" in usage("--coarse-labels", "--data-dir", cifar100_dir)
