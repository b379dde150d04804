"""CIFAR-10 in its official binary layout: download once, verify, extract safely, parse.

The cache holds `cifar-10-binary.tar.gz` and what it extracts to, `cifar-10-batches-bin/`. Files
already extracted are used as they are, checked by size and label range (not by the archive's
checksum), so any directory in the official layout works as a data directory. Nothing is parsed
with pickle. Every failure is a DataError whose message names the file and what to do.
"""
import hashlib
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np
from tqdm import tqdm

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
BATCH_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple("data_batch_%d.bin" % i for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
META_FILE = "batches.meta.txt"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")

IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then R, G, B planes of 32x32
RECORDS_PER_FILE = 10000
DOWNLOAD_TIMEOUT = 30  # seconds without data before a download gives up
CHUNK = 1 << 20  # bytes per read while downloading and hashing


class DataError(Exception):
    """Missing, truncated or corrupt data, or a failed download. The message says what to do."""


def default_data_dir():
    """$MXNET_HOME/datasets/cifar10, i.e. ~/.mxnet/datasets/cifar10 (where Gluon keeps datasets)."""
    home = os.environ.get("MXNET_HOME", os.path.join(os.path.expanduser("~"), ".mxnet"))
    return os.path.join(home, "datasets", "cifar10")


def parse_classes(text, names=CLASS_NAMES):
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

def load_cifar10(data_dir, url=URL, md5=ARCHIVE_MD5, progress=True):
    """Returns (train_x, train_y, test_x, test_y) as uint8 NCHW images and int32 labels.

    Downloads and extracts the archive into data_dir first when no extracted files are there.
    """
    try:
        batch_dir = find_batch_dir(data_dir)
        if batch_dir is None:
            batch_dir = download_and_extract(data_dir, url, md5, progress)
        train_x, train_y = read_batches(batch_dir, TRAIN_FILES)
        test_x, test_y = read_batches(batch_dir, TEST_FILES)
    except OSError as e:  # not a folder, no permission, disk full, ...
        raise DataError("cannot use %s as the data folder (%s). Choose another --data-dir."
                        % (data_dir, e)) from None
    return train_x, train_y, test_x, test_y


def find_batch_dir(data_dir):
    """The folder holding the .bin files (data_dir itself or its cifar-10-batches-bin), or None."""
    for candidate in (os.path.join(data_dir, BATCH_DIR), data_dir):
        if any(os.path.exists(os.path.join(candidate, f)) for f in TRAIN_FILES + TEST_FILES):
            return candidate
    return None


def read_batches(batch_dir, names):
    """Reads and validates binary batch files: exact size, labels 0-9."""
    images, labels = [], []
    for name in names:
        path = os.path.join(batch_dir, name)
        if not os.path.isfile(path):
            raise DataError("%s is missing. %s" % (path, _remedy(batch_dir)))
        size = os.path.getsize(path)
        if size != RECORD_BYTES * RECORDS_PER_FILE:
            expected = RECORD_BYTES * RECORDS_PER_FILE
            raise DataError("%s has %d bytes, expected %d (%s). %s"
                            % (path, size, expected, "truncated" if size < expected
                               else "not a CIFAR-10 batch", _remedy(batch_dir)))
        raw = np.fromfile(path, dtype=np.uint8).reshape(RECORDS_PER_FILE, RECORD_BYTES)
        bad = raw[:, 0] >= len(CLASS_NAMES)
        if bad.any():
            raise DataError("%s is corrupt: record %d has label %d, but CIFAR-10 labels are 0-9. %s"
                            % (path, int(np.argmax(bad)), int(raw[bad][0, 0]), _remedy(batch_dir)))
        labels.append(raw[:, 0].astype(np.int32))
        images.append(raw[:, 1:].reshape((-1,) + IMAGE_SHAPE))
    return np.concatenate(images), np.concatenate(labels)


def _remedy(batch_dir):
    return ("Replace it with a good copy, or delete %s and run again to download CIFAR-10 anew."
            % batch_dir)


# ----------------------------------------------------------------------------------------------
# Download and extraction

def download_and_extract(data_dir, url=URL, md5=ARCHIVE_MD5, progress=True):
    """Fetches the archive into data_dir (unless a verified copy is there) and extracts it.

    Both steps write to temporary names and rename only when complete, so an interrupted run
    never leaves anything that a later run could mistake for good data.
    """
    os.makedirs(data_dir, exist_ok=True)
    archive = os.path.join(data_dir, ARCHIVE_NAME)
    if not (os.path.isfile(archive) and file_md5(archive) == md5):
        download(url, archive, md5, progress)
    return extract(archive, data_dir)


def file_md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url, dest, md5, progress=True):
    """Downloads url to dest via dest's folder; dest appears only if complete and md5 matches."""
    fd, part = tempfile.mkstemp(prefix=os.path.basename(dest) + ".", suffix=".part",
                                dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as out:
            received, expected = _fetch(url, out, progress)
        if expected is not None and received != expected:
            raise DataError("the download of %s stopped after %d of %d bytes. Run again to retry."
                            % (url, received, expected))
        actual = file_md5(part)
        if actual != md5:
            raise DataError("the file downloaded from %s has md5 %s, expected %s: it is not the "
                            "CIFAR-10 binary archive, or it was damaged on the way. Check the URL "
                            "(--data-url) and run again." % (url, actual, md5))
        os.replace(part, dest)
    finally:
        if os.path.exists(part):
            os.remove(part)


def _fetch(url, out, progress):
    """Streams url into the open file out; returns (bytes received, Content-Length or None)."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            with _progress_bar(expected, "download " + os.path.basename(url), progress) as bar:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            return received, expected
    except (urllib.error.URLError, OSError, ValueError) as e:  # includes timeouts and HTTP errors
        reason = getattr(e, "reason", None) or e
        if isinstance(e, (socket.timeout, TimeoutError)):
            reason = "no data for %d s" % DOWNLOAD_TIMEOUT
        raise DataError("could not download %s (%s). Check the network, or download "
                        "cifar-10-binary.tar.gz yourself and extract it into --data-dir."
                        % (url, reason)) from None


def _progress_bar(total, desc, enabled):
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not (enabled and sys.stderr.isatty()), file=sys.stderr)


def extract(archive, data_dir):
    """Extracts the expected batch files of archive into data_dir/cifar-10-batches-bin.

    Only regular files with the expected names are read, and each is written to a path this
    function builds, so no member name (absolute, '..', links) can write outside data_dir.
    """
    wanted = set(TRAIN_FILES + TEST_FILES + (META_FILE,))
    final = os.path.join(data_dir, BATCH_DIR)
    staging = tempfile.mkdtemp(prefix=BATCH_DIR + ".", suffix=".part", dir=data_dir)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    name = os.path.basename(member.name)
                    if member.isfile() and name in wanted and \
                            os.path.dirname(member.name).rstrip("/").endswith(BATCH_DIR):
                        with tar.extractfile(member) as src, \
                                open(os.path.join(staging, name), "wb") as dst:
                            shutil.copyfileobj(src, dst)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise DataError("%s is not a readable tar.gz archive (%s). Delete it and run again to "
                            "download it anew." % (archive, e)) from None
        missing = sorted(wanted - set(os.listdir(staging)) - {META_FILE})
        if missing:
            raise DataError("%s does not contain %s/%s. Delete it and run again to download it "
                            "anew." % (archive, BATCH_DIR, ", ".join(missing)))
        read_batches(staging, TRAIN_FILES + TEST_FILES)  # validate before publishing
        if os.path.exists(final):
            raise DataError("%s exists but holds no CIFAR-10 batch files. Delete it and run again."
                            % final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
