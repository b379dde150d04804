"""Your own images: an image folder, or MXNet RecordIO files packed from one.

    ROOT/train/<class>/*.png|jpg|jpeg      ROOT/test/<class>/...     (the same classes in both)
    PREFIX_train.rec/.idx, PREFIX_test.rec/.idx, PREFIX_classes.txt  (pack_records(ROOT, PREFIX))

Classes are the folder names in sorted order (as Gluon's ImageFolderDataset numbers them).
Images are decoded with MXNet (OpenCV) as RGB and resized to 32x32 when they are another size;
the whole set is held in memory as uint8, like CIFAR-10, and goes through the same pipeline.
Records hold each image file's bytes as they are, so a .rec decodes to exactly the folder's
pixels; they are shuffled when packed, as MXNet's documentation insists (a reader that takes
records in order then sees mixed classes).
"""
import contextlib
import os

import mxnet as mx
import numpy as np

from common.files import atomic_write

from .cifar import DataError

SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SIZE = 32  # pixels per side that every image is brought to
PACK_SEED = 0  # the order of the records in a packed file


def list_folder(root):
    """(class names, {split: [(path, label), ...]}) of an image folder. Raises DataError."""
    classes = {}
    for split in SPLITS:
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            raise DataError("%s is not an image folder: it has no %s/ folder (expected "
                            "ROOT/train/<class>/*.png and ROOT/test/<class>/*.png)" % (root, split))
        classes[split] = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if classes["train"] != classes["test"]:
        only = lambda a, b: ", ".join(sorted(set(classes[a]) - set(classes[b]))) or "none"  # noqa: E731
        raise DataError("the class folders of %s differ between train/ and test/: only in train/: "
                        "%s; only in test/: %s" % (root, only("train", "test"), only("test", "train")))
    names = classes["train"]
    if len(names) < 2:
        raise DataError("%s/train has %d class folder(s); at least two are needed" % (root, len(names)))
    items = {}
    for split in SPLITS:
        items[split] = []
        for label, name in enumerate(names):
            folder = os.path.join(root, split, name)
            files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise DataError("%s holds no images (%s files)" % (folder, "/".join(IMAGE_EXTENSIONS)))
            items[split] += [(os.path.join(folder, f), label) for f in files]
    return names, items


def decode(content, source):
    """uint8 CHW RGB image of SIZE x SIZE from encoded bytes; source names it in errors. The one
    decode of this project: image folders, records and predict.py all go through it."""
    try:
        image = mx.image.imdecode(content, flag=1, to_rgb=True)
    except mx.base.MXNetError:
        raise DataError("%s is not a readable image" % source) from None
    if image.shape[:2] != (SIZE, SIZE):
        image = mx.image.imresize(image, SIZE, SIZE)
    return image.asnumpy().transpose(2, 0, 1)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_image(path):
    """An image file as decode() gives it."""
    try:
        return decode(read_bytes(path), path)
    except OSError as e:
        raise DataError("cannot read %s (%s)" % (path, e)) from None


def _stack(images, labels):
    return np.stack(images).astype(np.uint8), np.array(labels, dtype=np.int32)


def load_image_folder(root):
    """(train_x, train_y, test_x, test_y) from an image folder: uint8 NCHW, int32 labels
    numbering the classes of list_folder."""
    _, items = list_folder(root)
    arrays = []
    for split in SPLITS:
        arrays += _stack([read_image(path) for path, _ in items[split]],
                         [label for _, label in items[split]])
    return tuple(arrays)


def record_paths(prefix, split):
    return prefix + "_%s.rec" % split, prefix + "_%s.idx" % split


def classes_path(prefix):
    return prefix + "_classes.txt"


def pack_records(root, prefix, seed=PACK_SEED):
    """Packs an image folder into PREFIX_{train,test}.rec/.idx and PREFIX_classes.txt, shuffled.

    Every image is decoded once while packing, so a damaged file stops the packing with its
    name. Files are written under temporary names and renamed only when both splits and the
    class list are complete: a failed packing leaves nothing behind. Returns {split: number of
    records}.
    """
    names, items = list_folder(root)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    with contextlib.ExitStack() as outputs:
        for split in SPLITS:
            rec, idx = [outputs.enter_context(atomic_write(p)) for p in record_paths(prefix, split)]
            writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
            order = np.random.RandomState(seed).permutation(len(items[split]))
            try:
                for key, i in enumerate(order):
                    path, label = items[split][i]
                    content = read_bytes(path)
                    decode(content, path)
                    header = mx.recordio.IRHeader(0, float(label), key, 0)
                    writer.write_idx(key, mx.recordio.pack(header, content))
            finally:
                writer.close()
        with open(outputs.enter_context(atomic_write(classes_path(prefix))), "w") as f:
            f.write("\n".join(names) + "\n")
    return {split: len(items[split]) for split in SPLITS}


def record_classes(prefix):
    path = classes_path(prefix)
    if not os.path.isfile(path):
        raise DataError("%s is missing: pack RecordIO files with pack_images.py, which writes it "
                        "beside PREFIX_train.rec" % path)
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) < 2:
        raise DataError("%s lists %d class(es); at least two are needed" % (path, len(names)))
    return names


def load_records(prefix):
    """(train_x, train_y, test_x, test_y) from packed RecordIO files (labels numbering the
    classes of record_classes), read with
    MXNet's indexed record reader (mx.recordio.MXIndexedRecordIO, as Gluon's ImageRecordDataset)."""
    names = record_classes(prefix)
    arrays = []
    for split in SPLITS:
        rec, idx = record_paths(prefix, split)
        for path in (rec, idx):
            if not os.path.isfile(path):
                raise DataError("%s is missing (pack_images.py writes PREFIX_%s.rec and .idx)"
                                % (path, split))
        reader = mx.recordio.MXIndexedRecordIO(idx, rec, "r")
        images, labels = [], []
        try:
            for key in reader.keys:
                header, content = mx.recordio.unpack(reader.read_idx(key))
                images.append(decode(content, "record %d of %s" % (key, rec)))
                labels.append(int(header.label))
        except (mx.base.MXNetError, ValueError, OSError) as e:
            raise DataError("%s is damaged (%s); pack it again" % (rec, e)) from None
        finally:
            reader.close()
        if not images:
            raise DataError("%s holds no records" % rec)
        if max(labels) >= len(names) or min(labels) < 0:
            raise DataError("%s has labels outside the %d classes of %s"
                            % (rec, len(names), classes_path(prefix)))
        arrays += _stack(images, labels)
    return tuple(arrays)
