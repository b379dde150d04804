"""CIFAR-10 files: parsing and validation, normalisation, batching, download and extraction."""
import hashlib
import os
import tarfile

import mxnet as mx
import numpy as np
import pytest

from helpers import BATCH_NAMES, FEW, make_tar_gz, write_files
from data import DataError, load_cifar10, parse_classes
from data.cifar import LAYOUTS, download_and_extract, load
from data.pipeline import batch_bounds, batches, channel_stats, normalize, prepare, select_classes


def listing(folder):
    """Every file and folder below `folder`, relative."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, n), folder) for n in dirs + files]
    return sorted(found)


# ----------------------------------------------------------------------------------------------
# Parsing and validation of extracted files

def test_parses_the_official_binary_layout(data_dir, batch_files):
    train_x, train_y, test_x, test_y = load_cifar10(data_dir, url="http://127.0.0.1:9/unused")
    assert train_x.shape == (50000, 3, 32, 32) and train_x.dtype == np.uint8
    assert test_x.shape == (10000, 3, 32, 32) and test_y.shape == (10000,)
    raw = np.frombuffer(batch_files["data_batch_2.bin"], dtype=np.uint8).reshape(-1, 3073)
    np.testing.assert_array_equal(train_y[10000:20000], raw[:, 0])
    record = raw[7, 1:]  # 1024 red, 1024 green, 1024 blue bytes, row-major
    np.testing.assert_array_equal(train_x[10007, 0], record[:1024].reshape(32, 32))
    np.testing.assert_array_equal(train_x[10007, 2, 5], record[2048 + 5 * 32:2048 + 6 * 32])


def test_a_folder_holding_the_bin_files_directly_works_too(tmp_path, batch_files):
    write_files(tmp_path, batch_files)
    assert load_cifar10(str(tmp_path), url="http://127.0.0.1:9/unused")[3].shape == (10000,)


@pytest.mark.parametrize("layout, name, damage, expected", [
    ("cifar10", "data_batch_3.bin", "truncate", r"data_batch_3\.bin has 30729999 bytes, expected 30730000 \(truncated\)"),
    ("cifar10", "data_batch_3.bin", "remove", r"data_batch_3\.bin is missing"),
    ("cifar10", "data_batch_3.bin", (17, 0, 12), r"data_batch_3\.bin is corrupt: record 17 has label 12"),
    ("cifar100", "train.bin", "truncate", r"train\.bin has 153699999 bytes, expected 153700000 \(truncated\)"),
    ("cifar100", "train.bin", (17, 1, 120), r"train\.bin is corrupt: record 17 has fine label 120, but CIFAR-100 fine labels are 0-99"),
    ("cifar100", "test.bin", (3, 0, 20), r"test\.bin is corrupt: record 3 has coarse label 20, but CIFAR-100 coarse labels are 0-19"),
])
def test_damaged_files_are_named_in_the_error(tmp_path, batch_files, cifar100_files, layout, name, damage, expected):
    """damage: truncate or remove the file, or (record, byte of its labels, value) to write."""
    layout = LAYOUTS[layout]
    folder = write_files(tmp_path / layout.folder, batch_files if layout.key == "cifar10" else cifar100_files)
    path = os.path.join(folder, name)
    if damage == "truncate":
        os.truncate(path, os.path.getsize(path) - 1)
    elif damage == "remove":
        os.remove(path)
    else:
        record, offset, value = damage
        with open(path, "r+b") as f:
            f.seek(record * layout.record_bytes + offset)
            f.write(bytes([value]))
    with pytest.raises(DataError, match=expected):
        load(layout, str(tmp_path), url="http://127.0.0.1:9/unused")


def test_parse_classes():
    assert parse_classes("0,1") == [0, 1]
    assert parse_classes("automobile, airplane") == [1, 0]
    assert parse_classes("all") == list(range(10))
    for bad in ["0", "0,0", "0,10", "0,plane", "-1,2"]:
        with pytest.raises(ValueError):
            parse_classes(bad)


# ----------------------------------------------------------------------------------------------
# Normalisation and batching

def test_select_classes_remaps_in_the_order_given():
    x = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1)
    y = np.array([3, 1, 4, 1, 5, 9], dtype=np.int32)
    xs, ys = select_classes(x, y, [4, 1])
    assert xs.ravel().tolist() == [1, 2, 3] and ys.tolist() == [1, 0, 1]


def test_channel_stats_are_exact():
    images = np.random.RandomState(0).randint(0, 256, size=(50, 3, 8, 8)).astype(np.uint8)
    mean, std = channel_stats(images)
    as_float = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, as_float.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, as_float.std(axis=(0, 2, 3)), rtol=1e-6)
    normalised = normalize(images, mean, std)
    np.testing.assert_allclose(normalised.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.std(axis=(0, 2, 3)), 1, atol=1e-5)


def test_prepare_uses_training_statistics_and_puts_the_test_set_in_a_fixed_mixed_order():
    rng = np.random.RandomState(0)
    train_x = rng.randint(0, 256, size=(40, 3, 4, 4)).astype(np.uint8)
    train_y = np.arange(40, dtype=np.int32) % 4
    test_x = rng.randint(100, 140, size=(20, 3, 4, 4)).astype(np.uint8)
    test_y = np.sort(np.arange(20, dtype=np.int32) % 4)  # class-sorted, the dangerous case
    names = ["a", "b", "c", "d"]
    data = prepare(train_x, train_y, test_x, test_y, classes=[2, 0], class_names=names)
    assert data.class_names == ["c", "a"] and data.num_classes == 2
    assert data.train_x.shape == (20, 3, 4, 4) and data.test_x.shape == (10, 3, 4, 4)
    mean, std = channel_stats(train_x[np.isin(train_y, [2, 0])])
    np.testing.assert_allclose(data.mean, mean) and np.testing.assert_allclose(data.std, std)
    labels = data.test_y.asnumpy()
    assert sorted(labels.tolist()) == [0.0] * 5 + [1.0] * 5 and labels.tolist() != sorted(labels.tolist())
    again = prepare(train_x, train_y, test_x, test_y, classes=[2, 0], class_names=names)
    np.testing.assert_array_equal(again.test_y.asnumpy(), labels)
    np.testing.assert_allclose(data.train_x.asnumpy().mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_batches_cover_every_image_once_and_reshuffle_each_epoch():
    x = mx.nd.arange(10).reshape(10, 1)
    rng = np.random.RandomState(0)
    epochs = [[b[0].asnumpy().ravel().tolist() for b in batches(x, x, 4, rng)] for _ in range(2)]
    for epoch in epochs:
        assert [len(b) for b in epoch] == [4, 4, 2]
        assert sorted(sum(epoch, [])) == list(range(10))
    assert epochs[0] != epochs[1]
    in_order = [b[1].asnumpy().ravel().tolist() for b in batches(x, x, 4)]
    assert in_order == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_batch_bounds_fold_a_too_small_remainder_into_the_previous_batch():
    assert batch_bounds(10000, 128)[-1] == (9984, 10000)  # the spec's task: 79 batches, the last of 16
    assert len(batch_bounds(10000, 128)) == 79
    assert batch_bounds(10, 4, min_size=3) == [(0, 4), (4, 10)]
    assert batch_bounds(10, 4, min_size=2) == [(0, 4), (4, 8), (8, 10)]


# ----------------------------------------------------------------------------------------------
# Download and extraction, against archives served from 127.0.0.1

def test_downloads_verifies_extracts_once_and_then_uses_the_cache(tmp_path, http_server, good_archive, batch_files):
    blob, md5 = good_archive
    url = http_server.serve("/cifar-10-binary.tar.gz", blob)
    cache = str(tmp_path / "cache")
    first = load_cifar10(cache, url=url, md5=md5, progress=False)
    assert http_server.requests == ["/cifar-10-binary.tar.gz"]
    assert listing(cache) == sorted(["cifar-10-binary.tar.gz", "cifar-10-batches-bin"] +
                                    ["cifar-10-batches-bin/" + n for n in batch_files])
    second = load_cifar10(cache, url=url, md5=md5, progress=False)
    assert len(http_server.requests) == 1  # nothing downloaded again
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert first[1][:FEW].tolist() == (np.arange(FEW) % 3).tolist()


def test_a_verified_archive_in_the_cache_is_extracted_without_downloading(tmp_path, good_archive, batch_files):
    blob, md5 = good_archive
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(blob)
    train_x, train_y, test_x, test_y = load_cifar10(str(tmp_path), url="http://127.0.0.1:9/unreachable", md5=md5,
                                                    progress=False)  # nothing listens on port 9: no download
    assert train_x.shape == (50000, 3, 32, 32) and test_y.shape == (10000,)
    test_records = np.frombuffer(batch_files["test_batch.bin"], dtype=np.uint8).reshape(-1, 3073)
    np.testing.assert_array_equal(test_y, test_records[:, 0])  # the archive's own images, extracted
    assert "cifar-10-batches-bin/test_batch.bin" in listing(tmp_path)
    assert "cifar-10-binary.tar.gz" in listing(tmp_path)  # the verified archive stays


def test_a_truncated_transfer_leaves_nothing_behind(tmp_path, http_server, good_archive):
    blob, md5 = good_archive
    url = http_server.serve("/cifar-10-binary.tar.gz", blob, truncate=True)
    with pytest.raises(DataError, match=r"stopped after \d+ of %d bytes" % len(blob)):
        load_cifar10(str(tmp_path), url=url, md5=md5, progress=False)
    assert listing(tmp_path) == []


def test_a_wrong_checksum_leaves_nothing_behind(tmp_path, http_server, good_archive):
    blob, _ = good_archive
    url = http_server.serve("/cifar-10-binary.tar.gz", blob)
    with pytest.raises(DataError, match="has md5 %s, expected 0123" % hashlib.md5(blob).hexdigest()):
        load_cifar10(str(tmp_path), url=url, md5="0123" * 8, progress=False)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("url_path", ["/missing.tar.gz", None], ids=["http-404", "connection-refused"])
def test_an_unreachable_url_is_one_clear_error(tmp_path, http_server, url_path):
    # A path the server does not have (404), or a port where nothing listens.
    url = http_server.serve(url_path, None) if url_path else "http://127.0.0.1:9/x.tar.gz"
    http_server.routes.clear()
    with pytest.raises(DataError, match="could not download %s" % url):
        load_cifar10(str(tmp_path), url=url, progress=False)
    assert listing(tmp_path) == []


def test_a_corrupt_archive_with_a_matching_checksum_is_reported_and_not_half_extracted(tmp_path, good_archive):
    blob = good_archive[0][:len(good_archive[0]) // 2]  # cut mid-stream
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(blob)
    with pytest.raises(DataError, match="not a readable tar.gz archive"):
        download_and_extract(str(tmp_path), url="http://127.0.0.1:9/x", md5=hashlib.md5(blob).hexdigest())
    assert listing(tmp_path) == ["cifar-10-binary.tar.gz"]


def test_an_archive_lacking_a_batch_file_names_it(tmp_path, batch_files):
    blob = make_tar_gz([("cifar-10-batches-bin/" + n, c) for n, c in batch_files.items() if n != "test_batch.bin"])
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(blob)
    with pytest.raises(DataError, match="does not contain cifar-10-batches-bin/test_batch.bin"):
        download_and_extract(str(tmp_path), url="http://127.0.0.1:9/x", md5=hashlib.md5(blob).hexdigest())
    assert listing(tmp_path) == ["cifar-10-binary.tar.gz"]


def test_no_member_of_a_hostile_archive_can_write_outside_the_cache(tmp_path, batch_files):
    link = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    members = [("../escaped.bin", b"x"), ("/tmp/absolute-escape.bin", b"x"),
               ("cifar-10-batches-bin/../../escaped2.bin", b"x"), ("data_batch_1.bin", link)]
    members += [("cifar-10-batches-bin/" + n, c) for n, c in batch_files.items() if n != "data_batch_1.bin"]
    blob = make_tar_gz(members)
    cache = tmp_path / "deep" / "cache"
    cache.mkdir(parents=True)
    (cache / "cifar-10-binary.tar.gz").write_bytes(blob)
    with pytest.raises(DataError, match="does not contain cifar-10-batches-bin/data_batch_1.bin"):
        download_and_extract(str(cache), url="http://127.0.0.1:9/x", md5=hashlib.md5(blob).hexdigest())
    assert listing(tmp_path) == ["deep", "deep/cache", "deep/cache/cifar-10-binary.tar.gz"]
    assert not os.path.exists("/tmp/absolute-escape.bin")


def test_only_batch_files_are_used_from_the_archive(tmp_path, batch_files):
    assert len(BATCH_NAMES) == 6
    extra = [("cifar-10-batches-bin/readme.html", b"<html>"), ("cifar-10-batches-bin/sub/evil.bin", b"x")]
    blob = make_tar_gz(extra + [("cifar-10-batches-bin/" + n, c) for n, c in batch_files.items()])
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(blob)
    download_and_extract(str(tmp_path), url="http://127.0.0.1:9/x", md5=hashlib.md5(blob).hexdigest())
    assert sorted(os.listdir(tmp_path / "cifar-10-batches-bin")) == sorted(batch_files)
