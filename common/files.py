"""Writing files so that nothing half-written is ever mistaken for a good one, and their checksums.
Used by checkpoints, exports, downloads, extraction, record packing and pictures alike."""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile

CHUNK = 1 << 20  # bytes per read while hashing


@contextlib.contextmanager
def atomic_write(path, folder=False):
    """Yields a temporary path beside `path` to write to (a folder with folder=True). When the
    block completes, the temporary replaces `path` at once (a file is flushed to disk first);
    when it raises, the temporary is removed and `path` is left as it was."""
    parent, name = os.path.split(os.path.abspath(path))
    if folder:
        tmp = tempfile.mkdtemp(prefix=name + ".", suffix=".part", dir=parent)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a plain mkdir would not
    else:
        fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a plain open() would not
    try:
        yield tmp
        if not folder:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, record):
    """Writes record as indented JSON to path atomically."""
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(record, f, indent=1)


def write_text(path, text):
    """Writes text to path atomically."""
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()



def _numbered(path):
    """path, path-2, path-3, ...: the names a new folder tries in turn."""
    yield path
    n = 2
    while True:
        yield "%s-%d" % (path, n)
        n += 1


def unused_name(path):
    """The first of path, path-2, path-3 ... that does not exist (for a folder another process makes)."""
    return next(name for name in _numbered(path) if not os.path.exists(name))


def new_folder(path):
    """Creates the first of path, path-2, path-3 ... that does not exist and returns it: an
    existing folder is never reused, even by a process creating the same name at once."""
    for name in _numbered(path):
        try:
            os.makedirs(name)
            return name
        except FileExistsError:
            continue
