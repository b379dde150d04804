"""CIFAR-10 and CIFAR-100 in their official binary layouts: download once, verify, extract
safely, parse.

    CIFAR-10:  cifar-10-binary.tar.gz  -> cifar-10-batches-bin/data_batch_1..5.bin, test_batch.bin
               records: 1 label byte, 3072 pixel bytes (R, G, B planes of 32x32)
    CIFAR-100: cifar-100-binary.tar.gz -> cifar-100-binary/train.bin, test.bin,
               coarse_label_names.txt, fine_label_names.txt
               records: 1 coarse-label byte, 1 fine-label byte, 3072 pixel bytes

One `Layout` describes each; the same code downloads, verifies, extracts and parses both. The
cache holds the archive and what it extracts to. Files already extracted are used as they are,
checked by size and label range (not by the archive's checksum), so any directory in the
official layout works as a data directory. Nothing is parsed with pickle. Every failure is a
DataError whose message names the file and what to do.
"""
import contextlib
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass

import numpy as np

from common import interrupts
from common.cli import UserError
from common.files import atomic_write, md5 as file_md5
from common.progress import progress_bar

IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32
DOWNLOAD_TIMEOUT = 30  # seconds without data before a download gives up
CHUNK = 1 << 20  # bytes per read while downloading

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


class DataError(UserError):
    """Missing, truncated or corrupt data, or a failed download. The message says what to do."""


@dataclass(frozen=True)
class Layout:
    """One dataset's official binary release."""
    title: str  # in messages
    key: str  # --dataset, and the cache folder's name
    url: str
    md5: str
    folder: str  # what the archive extracts to
    train_files: tuple
    test_files: tuple
    records: dict  # records per file name
    label_bytes: int  # label bytes before each image
    label_names: dict  # label kind -> (names file in the folder or None, number of labels)
    extras: tuple = ()  # further files taken from the archive (label names)

    @property
    def archive(self):
        return self.url.rsplit("/", 1)[1]

    @property
    def record_bytes(self):
        return self.label_bytes + IMAGE_BYTES

    @property
    def batch_files(self):
        return self.train_files + self.test_files


CIFAR10 = Layout(
    title="CIFAR-10", key="cifar10", url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5="c32a1d4ab5d03f1284b67883e8d87530", folder="cifar-10-batches-bin",
    train_files=tuple("data_batch_%d.bin" % i for i in range(1, 6)), test_files=("test_batch.bin",),
    records=dict.fromkeys(["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"], 10000),
    label_bytes=1, label_names={"label": (None, 10)}, extras=("batches.meta.txt",))

CIFAR100 = Layout(
    title="CIFAR-100", key="cifar100", url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5="03b5dce01913d631647c71ecec9e9cb8", folder="cifar-100-binary",
    train_files=("train.bin",), test_files=("test.bin",),
    records={"train.bin": 50000, "test.bin": 10000}, label_bytes=2,
    label_names={"coarse": ("coarse_label_names.txt", 20), "fine": ("fine_label_names.txt", 100)},
    extras=("coarse_label_names.txt", "fine_label_names.txt"))

LAYOUTS = {layout.key: layout for layout in (CIFAR10, CIFAR100)}
LABEL_BYTE = {"label": 0, "coarse": 0, "fine": 1}  # which label byte a kind of label is


def default_data_dir(layout=CIFAR10):
    """$MXNET_HOME/datasets/<key>, i.e. ~/.mxnet/datasets/cifar10 (where Gluon keeps datasets)."""
    home = os.environ.get("MXNET_HOME", os.path.join(os.path.expanduser("~"), ".mxnet"))
    return os.path.join(home, "datasets", layout.key)


def parse_classes(text, names=CIFAR10_CLASSES):
    """'0,1' or 'airplane,automobile' -> [0, 1] (indices into names); 'all' or '' -> all of
    them. Raises ValueError."""
    names = [n.lower() for n in names]
    if text is None or text.strip().lower() in ("", "all"):
        return list(range(len(names)))
    classes = []
    for item in text.split(","):
        item = item.strip().lower()
        if item in names:
            index = names.index(item)
        elif item.isdigit() and int(item) < len(names):
            index = int(item)
        else:
            raise ValueError("unknown class %r: use 0-%d or one of %s"
                             % (item, len(names) - 1, ", ".join(names)))
        if index in classes:
            raise ValueError("class %r is listed twice" % item)
        classes.append(index)
    if len(classes) < 2:
        raise ValueError("at least two classes are needed to train a classifier")
    return classes


# ----------------------------------------------------------------------------------------------
# Loading

def load(layout, data_dir, url=None, md5=None, progress=True, label="fine"):
    """Returns (train_x, train_y, test_x, test_y) as uint8 NCHW images and int32 labels.

    Downloads and extracts the archive into data_dir first when no extracted files are there.
    label: for CIFAR-100, 'fine' (100 classes) or 'coarse' (20 superclasses).
    """
    kind = label if label in layout.label_names else "label"
    batch_dir = extracted_folder(layout, data_dir, url, md5, progress)
    try:
        train_x, train_y = read_batches(batch_dir, layout.train_files, layout, kind)
        test_x, test_y = read_batches(batch_dir, layout.test_files, layout, kind)
    except OSError as e:
        raise DataError("cannot read %s (%s)" % (batch_dir, e)) from None
    return train_x, train_y, test_x, test_y


def load_cifar10(data_dir, url=CIFAR10.url, md5=CIFAR10.md5, progress=True):
    return load(CIFAR10, data_dir, url, md5, progress)


def extracted_folder(layout, data_dir, url=None, md5=None, progress=True):
    """The folder of extracted files in data_dir, downloaded and extracted first if needed."""
    try:
        batch_dir = find_batch_dir(layout, data_dir)
        if batch_dir is None:
            batch_dir = download_and_extract(data_dir, url or layout.url, md5 or layout.md5,
                                             progress, layout)
        return batch_dir
    except OSError as e:  # not a folder, no permission, disk full, ...
        raise DataError("cannot use %s as the data folder (%s). Choose another --data-dir."
                        % (data_dir, e)) from None


def class_names(layout, batch_dir, label="fine"):
    """The class names of a layout's labels: CIFAR-10's are fixed; CIFAR-100's are read from
    the names file in batch_dir (a data folder without it gets numbered names)."""
    names_file, count = layout.label_names.get(label, layout.label_names.get("label"))
    if names_file is None:
        return list(CIFAR10_CLASSES)
    path = os.path.join(batch_dir, names_file)
    if os.path.isfile(path):
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == count:
            return names
    return ["%s_%d" % (label, i) for i in range(count)]


def find_batch_dir(layout, data_dir):
    """The folder holding the .bin files (data_dir itself or its extracted folder), or None."""
    for candidate in (os.path.join(data_dir, layout.folder), data_dir):
        if any(os.path.exists(os.path.join(candidate, f)) for f in layout.batch_files):
            return candidate
    return None


def read_batches(batch_dir, names, layout=CIFAR10, kind="label"):
    """Reads and validates the layout's batch files: each of its exact size. The records of all
    of them are read into one buffer, of which the images are a view (a subset of classes is
    copied from it once, not the whole set twice)."""
    paths = []
    for name in names:
        path = os.path.join(batch_dir, name)
        if not os.path.isfile(path):
            raise DataError("%s is missing. %s" % (path, _remedy(layout, batch_dir)))
        size, expected = os.path.getsize(path), layout.record_bytes * layout.records[name]
        if size != expected:
            raise DataError("%s has %d bytes, expected %d (%s). %s"
                            % (path, size, expected, "truncated" if size < expected
                               else "not a %s batch" % layout.title, _remedy(layout, batch_dir)))
        paths.append(path)
    raw = np.empty((sum(layout.records[name] for name in names), layout.record_bytes), dtype=np.uint8)
    start = 0
    for name, path in zip(names, paths):
        records = raw[start:start + layout.records[name]]
        with open(path, "rb") as f:
            f.readinto(memoryview(records).cast("B"))
        check_labels(records, path, layout, remedy=_remedy(layout, batch_dir))
        start += len(records)
    return split_records(raw, layout, kind)


def read_records(path, layout=CIFAR10, kind="label", remedy=""):
    """(uint8 NCHW images, int32 labels of `kind`) of a file of the layout's records, however
    many it holds; every label byte is checked against its range."""
    size = os.path.getsize(path)
    if size == 0 or size % layout.record_bytes:
        raise DataError(("%s has %d bytes: not a whole number of %s records of %d bytes. %s"
                         % (path, size, layout.title, layout.record_bytes, remedy)).rstrip())
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, layout.record_bytes)
    check_labels(raw, path, layout, remedy)
    return split_records(raw, layout, kind)


def check_labels(raw, path, layout, remedy):
    """Raises DataError naming the first record of path (rows of raw) whose label is out of range."""
    for k, (_, count) in layout.label_names.items():
        column = raw[:, LABEL_BYTE[k]]
        bad = column >= count
        if bad.any():
            what = "label" if k == "label" else k + " label"
            raise DataError(("%s is corrupt: record %d has %s %d, but %s %ss are 0-%d. %s"
                             % (path, int(np.argmax(bad)), what, int(column[bad][0]),
                                layout.title, what, count - 1, remedy)).rstrip())


def split_records(raw, layout, kind):
    """(images: a view of raw's image bytes as NCHW, int32 labels of `kind`)."""
    return (raw[:, layout.label_bytes:].reshape((-1,) + IMAGE_SHAPE),
            raw[:, LABEL_BYTE[kind]].astype(np.int32))


def _remedy(layout, batch_dir):
    return ("Replace it with a good copy, or delete %s and run again to download %s anew."
            % (batch_dir, layout.title))


# ----------------------------------------------------------------------------------------------
# Download and extraction

def download_and_extract(data_dir, url=CIFAR10.url, md5=CIFAR10.md5, progress=True, layout=CIFAR10):
    """Fetches the archive into data_dir (unless a verified copy is there) and extracts it.

    Both steps write to temporary names and rename only when complete, so an interrupted run
    never leaves anything that a later run could mistake for good data; a failed run also
    removes the folders it created for them while they are still empty.
    """
    created = _folders_to_create(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    try:
        archive = os.path.join(data_dir, layout.archive)
        if not (os.path.isfile(archive) and file_md5(archive) == md5):
            download(url, archive, md5, progress, layout)
        return extract(archive, data_dir, layout)
    except BaseException:  # also Ctrl-C
        for folder in reversed(created):
            with contextlib.suppress(OSError):  # not empty: it holds something to keep
                os.rmdir(folder)
        raise


def _folders_to_create(path):
    """The folders os.makedirs(path) would create, outermost first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing[::-1]


def download(url, dest, md5, progress=True, layout=CIFAR10):
    """Downloads url to dest via dest's folder; dest appears only if complete and md5 matches."""
    with atomic_write(dest) as part:
        with open(part, "wb") as out:
            received, expected = _stream(url, out, progress, layout)
        if expected is not None and received != expected:
            raise DataError("the download of %s stopped after %d of %d bytes. %s"
                            % (url, received, expected, _download_remedy(layout)))
        actual = file_md5(part)
        if actual != md5:
            raise DataError("the file downloaded from %s has md5 %s, expected %s: it is not the "
                            "%s binary archive, or it was damaged on the way. %s"
                            % (url, actual, md5, layout.title, _download_remedy(layout)))


def _download_remedy(layout):
    return ("Run again to retry, give a mirror of the same file with --data-url, or download %s "
            "yourself, extract it and give its folder as --data-dir." % layout.archive)


def _stream(url, out, progress, layout):
    """Streams url into the open file out; returns (bytes received, Content-Length or None)."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            with progress_bar(expected, "download " + os.path.basename(url), progress, unit="B",
                              unit_scale=True, unit_divisor=1024) as bar:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
                    interrupts.reach("download")
            return received, expected
    except (urllib.error.URLError, OSError, ValueError) as e:  # includes timeouts and HTTP errors
        reason = getattr(e, "reason", None) or e
        if isinstance(e, (socket.timeout, TimeoutError)):
            reason = "no data for %d s" % DOWNLOAD_TIMEOUT
        raise DataError("could not download %s (%s). %s" % (url, reason, _download_remedy(layout))) from None


def extract(archive, data_dir, layout=CIFAR10):
    """Extracts the expected files of archive into data_dir/<layout.folder>.

    Only regular files with the expected names are read, and each is written to a path this
    function builds, so no member name (absolute, '..', links) can write outside data_dir.
    """
    wanted = set(layout.batch_files + layout.extras)
    final = os.path.join(data_dir, layout.folder)
    with atomic_write(final, folder=True) as staging:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    name = os.path.basename(member.name)
                    if member.isfile() and name in wanted and \
                            os.path.dirname(member.name).rstrip("/").endswith(layout.folder):
                        with tar.extractfile(member) as src, \
                                open(os.path.join(staging, name), "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        interrupts.reach("extraction")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise DataError("%s is not a readable tar.gz archive (%s). Delete it and run again to "
                            "download it anew." % (archive, e)) from None
        missing = sorted(set(layout.batch_files) - set(os.listdir(staging)))
        if missing:
            raise DataError("%s does not contain %s/%s. Delete it and run again to download it "
                            "anew." % (archive, layout.folder, ", ".join(missing)))
        read_batches(staging, layout.batch_files, layout)  # validate before publishing
        if os.path.exists(final):
            raise DataError("%s exists but holds no %s batch files. Delete it and run again."
                            % (final, layout.title))
    return final
