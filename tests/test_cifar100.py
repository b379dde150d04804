"""CIFAR-100 in its official binary layout, built here: parsing, labels, subsetting, errors."""
import hashlib
import json
import os

import numpy as np
import pytest

from helpers import make_tar_gz, run_cli, write_files
from data import DataError
from data.cifar import CIFAR100, class_names, download_and_extract, load

FEW = 90  # records per file with fine labels 0, 1 or 5 (coarse 0, 0, 1); the rest are 10-99
FINE_NAMES = ["fine%02d" % i for i in range(100)]
COARSE_NAMES = ["coarse%02d" % i for i in range(20)]


def cifar100_records(seed, records):
    """A file's bytes: coarse byte, fine byte, then a learnable image (a colour per fine label)."""
    rng = np.random.RandomState(seed)
    fine = np.where(np.arange(records) < FEW, np.array([0, 1, 5])[np.arange(records) % 3],
                    10 + np.arange(records) % 90)
    colours = np.random.RandomState(1).randint(30, 226, size=(100, 3, 1, 1))
    noise = np.frombuffer(rng.bytes(records * 3072), dtype=np.uint8).astype(np.int16) % 61 - 30
    images = np.clip(colours[fine] + noise.reshape(records, 3, 32, 32), 0, 255).astype(np.uint8)
    out = np.empty((records, 3074), dtype=np.uint8)
    out[:, 0], out[:, 1] = fine // 5, fine
    out[:, 2:] = images.reshape(records, -1)
    return out.tobytes()


@pytest.fixture(scope="module")
def cifar100_files():
    return {"train.bin": cifar100_records(0, 50000), "test.bin": cifar100_records(1, 10000),
            "fine_label_names.txt": ("\n".join(FINE_NAMES) + "\n").encode(),
            "coarse_label_names.txt": ("\n".join(COARSE_NAMES) + "\n").encode()}


@pytest.fixture(scope="module")
def cifar100_dir(tmp_path_factory, cifar100_files):
    root = tmp_path_factory.mktemp("cifar100")
    write_files(os.path.join(root, "cifar-100-binary"), cifar100_files)
    return str(root)


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


@pytest.mark.parametrize("damage, expected", [
    ("truncate", r"train\.bin has 153699999 bytes, expected 153700000 \(truncated\)"),
    ("bad fine label", r"train\.bin is corrupt: record 17 has fine label 120, but CIFAR-100 fine labels are 0-99"),
    ("bad coarse label", r"test\.bin is corrupt: record 3 has coarse label 20, but CIFAR-100 coarse labels are 0-19"),
])
def test_damaged_files_are_named_in_the_error(tmp_path, cifar100_files, damage, expected):
    folder = write_files(tmp_path / "cifar-100-binary", cifar100_files)
    if damage == "truncate":
        os.truncate(os.path.join(folder, "train.bin"), 50000 * 3074 - 1)
    else:
        name, record, offset, value = (("train.bin", 17, 1, 120) if damage == "bad fine label"
                                       else ("test.bin", 3, 0, 20))
        with open(os.path.join(folder, name), "r+b") as f:
            f.seek(record * 3074 + offset)
            f.write(bytes([value]))
    with pytest.raises(DataError, match=expected):
        load(CIFAR100, str(tmp_path), url="http://127.0.0.1:9/unused")


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
