"""Training on your own images: an image folder, RecordIO packed from it, and their bad inputs."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli, run_command
from data import DataError, list_folder, load_image_folder, load_records, pack_records

CLASSES = ("cat", "dog", "fox")


def write_folder(root, per_class=(12, 4), size=32, seed=0):
    """ROOT/train|test/<class>/*.png of learnable images (a colour per class plus noise)."""
    rng = np.random.RandomState(seed)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(CLASSES):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                colour = np.array([60, 120, 180])[[label, (label + 1) % 3, (label + 2) % 3]]
                pixels = np.clip(colour + rng.randint(-30, 30, size=(size, size, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(folder, "%03d.png" % i))
    return str(root)


def canonical(x, y):
    """Images and labels in an order independent of how they were stored."""
    keys = [bytes(img.tobytes()) + bytes([lab]) for img, lab in zip(x, y)]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return x[order], y[order]


def test_a_folder_loads_as_uint8_images_with_sorted_class_labels(tmp_path):
    root = write_folder(tmp_path / "images")
    names, items = list_folder(root)
    assert names == list(CLASSES) and len(items["train"]) == 36 and len(items["test"]) == 12
    train_x, train_y, test_x, test_y = load_image_folder(root)
    assert train_x.shape == (36, 3, 32, 32) and train_x.dtype == np.uint8
    assert sorted(set(train_y)) == [0, 1, 2] and test_x.shape == (12, 3, 32, 32)
    first = np.array(Image.open(os.path.join(root, "train", "cat", "000.png")))
    np.testing.assert_array_equal(train_x[0], first.transpose(2, 0, 1))  # RGB, CHW


def test_records_hold_exactly_the_folders_images_in_a_shuffled_order(tmp_path):
    root = write_folder(tmp_path / "images")
    counts = pack_records(root, str(tmp_path / "packed" / "mine"))
    assert counts == {"train": 36, "test": 12}
    from_folder, from_records = load_image_folder(root), load_records(str(tmp_path / "packed" / "mine"))
    for split in (0, 2):
        np.testing.assert_array_equal(*[canonical(*arrays[split:split + 2])[0]
                                        for arrays in (from_folder, from_records)])
        np.testing.assert_array_equal(*[canonical(*arrays[split:split + 2])[1]
                                        for arrays in (from_folder, from_records)])
    assert list(from_records[1]) != sorted(from_records[1])  # shuffled when packed
    assert (tmp_path / "packed" / "mine_classes.txt").read_text().split() == list(CLASSES)


def test_other_sizes_are_resized_to_32(tmp_path):
    root = write_folder(tmp_path / "images", size=48)
    assert load_image_folder(root)[0].shape == (36, 3, 32, 32)


def test_training_from_the_folder_and_from_the_records(tmp_path):
    root = write_folder(tmp_path / "images", per_class=(40, 10))
    packed = run_command("pack_images.py", root, tmp_path / "rec")
    assert packed.returncode == 0, packed.stderr
    for flags in (["--image-folder", root], ["--rec-prefix", str(tmp_path / "rec")]):
        result = run_cli(*flags, "--epochs", "3", "--batch-size", "16", "--classes", "cat,fox",
                         "--quiet", "--output-dir", str(tmp_path / flags[0][2:]))
        assert result.returncode == 0, result.stderr[-2000:]
        last = json.loads(result.stdout.splitlines()[-1])
        assert last["test_acc"] == 1.0  # colour-coded classes: learnable in a few steps
        config = json.load(open(tmp_path / flags[0][2:] / "config.json"))
        assert config["class_names"] == ["cat", "fox"] and config["train_images"] == 80


def break_one(root, how):
    if how == "empty class":
        for f in os.listdir(os.path.join(root, "train", "dog")):
            os.remove(os.path.join(root, "train", "dog", f))
    elif how == "unreadable image":
        with open(os.path.join(root, "test", "fox", "001.png"), "wb") as f:
            f.write(b"not an image at all")
    elif how == "mismatched classes":
        os.rename(os.path.join(root, "test", "fox"), os.path.join(root, "test", "wolf"))
    elif how == "no test folder":
        os.rename(os.path.join(root, "test"), os.path.join(root, "val"))


@pytest.mark.parametrize("how, message", [
    ("empty class", "train/dog holds no images"),
    ("unreadable image", "test/fox/001.png is not a readable image"),
    ("mismatched classes", "differ between train/ and test/: only in train/: fox; only in test/: wolf"),
    ("no test folder", "it has no test/ folder"),
])
def test_bad_folders_are_one_clear_error(tmp_path, how, message):
    root = write_folder(tmp_path / "images", per_class=(3, 2))
    break_one(root, how)
    with pytest.raises(DataError, match="") as caught:
        load_image_folder(root)
    assert message in str(caught.value)
    for command in (["pack_images.py", root, tmp_path / "rec"], ["train_cifar10.py", "--image-folder", root]):
        result = run_command(*command, cwd=tmp_path)
        assert result.returncode == 1 and message in result.stderr
        assert result.stderr.count("error:") == 1
    assert not (tmp_path / "rec_train.rec").exists() and not (tmp_path / "runs").exists()


def test_damaged_or_missing_records_are_one_clear_error(tmp_path):
    root = write_folder(tmp_path / "images", per_class=(3, 2))
    prefix = str(tmp_path / "rec")
    pack_records(root, prefix)
    with open(prefix + "_train.rec", "r+b") as f:
        f.truncate(os.path.getsize(prefix + "_train.rec") // 2)
    with pytest.raises(DataError, match="rec_train.rec is damaged"):
        load_records(prefix)
    os.remove(prefix + "_test.idx")
    result = run_cli("--rec-prefix", prefix)
    assert result.returncode == 1 and "rec_train.rec is damaged" in result.stderr
    os.remove(prefix + "_classes.txt")
    result = run_cli("--rec-prefix", prefix)
    assert result.returncode == 1 and "rec_classes.txt is missing" in result.stderr


def test_classes_of_another_dataset_are_a_usage_error(tmp_path, usage):
    root = write_folder(tmp_path / "images", per_class=(3, 2))
    assert "unknown class 'airplane': use 0-2 or one of cat, dog, fox" in usage("--image-folder", root,
                                                                                 "--classes", "airplane,cat")
