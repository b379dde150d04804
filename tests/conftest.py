"""Shared fixtures: CIFAR-10 files in the official binary layout, archives of them, a local server."""
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import warnings

import numpy as np
import pytest

from common import runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # on sys.path: pytest.ini


def pytest_configure(config):
    """The test process is an entry point too: ready before any test module loads MXNet."""
    with warnings.catch_warnings():  # MXNet's import uses what newer numpy/setuptools deprecate
        warnings.simplefilter("ignore", DeprecationWarning)
        runtime.prepare()

RECORDS = 10000  # per file, as in the official files
FEW = 120  # records per file that belong to classes 0, 1, 2; the rest are classes 3-9


def synthetic_records(seed, records=RECORDS):
    """A batch file's bytes: learnable images (a class colour plus noise), labels 0-9.

    Only the first FEW records of each file have labels 0-2, so `--classes 0,1` selects a tiny
    training set (5 * 80 images) and tests of the command line run in seconds.
    """
    rng = np.random.RandomState(seed)
    labels = np.where(np.arange(records) < FEW, np.arange(records) % 3, 3 + np.arange(records) % 7)
    colours = np.random.RandomState(0).randint(40, 216, size=(10, 3, 1, 1))
    noise = np.frombuffer(rng.bytes(records * 3072), dtype=np.uint8).astype(np.int16) % 81 - 40
    images = np.clip(colours[labels] + noise.reshape(records, 3, 32, 32), 0, 255).astype(np.uint8)
    out = np.empty((records, 3073), dtype=np.uint8)
    out[:, 0] = labels
    out[:, 1:] = images.reshape(records, -1)
    return out.tobytes()


BATCH_NAMES = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]


@pytest.fixture(scope="session")
def batch_files():
    """{file name: bytes} of a complete synthetic CIFAR-10 in the official binary layout."""
    files = {name: synthetic_records(seed) for seed, name in enumerate(BATCH_NAMES)}
    files["batches.meta.txt"] = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    return files


def write_files(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    return folder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, batch_files):
    """A data dir holding cifar-10-batches-bin/, as the official archive extracts (read-only use)."""
    root = tmp_path_factory.mktemp("cifar")
    write_files(os.path.join(root, "cifar-10-batches-bin"), batch_files)
    return str(root)


def make_tar_gz(members):
    """A .tar.gz in memory. members: list of (name, bytes) or (name, tarfile.TarInfo) pairs."""
    buf = io.BytesIO()
    # compresslevel 0: still a valid gzip stream, without the time spent compressing.
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=0) as tar:
        for name, content in members:
            if isinstance(content, tarfile.TarInfo):
                tar.addfile(content)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture(scope="session")
def good_archive(batch_files):
    """(bytes, md5) of an archive laid out as the official cifar-10-binary.tar.gz."""
    blob = make_tar_gz([("cifar-10-batches-bin/" + n, c) for n, c in sorted(batch_files.items())])
    return blob, hashlib.md5(blob).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        if self.path not in server.routes:
            self.send_error(404)
            return
        body, truncate = server.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A truncated transfer: the full length is announced, part of it is sent, then the
        # connection closes.
        self.wfile.write(body[:len(body) // 3] if truncate else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A throw-away HTTP server on 127.0.0.1. serve(path, body, truncate=False) -> URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes, server.requests = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(path, body, truncate=False):
        server.routes[path] = (body, truncate)
        return "http://127.0.0.1:%d%s" % (server.server_address[1], path)

    server.serve = serve
    yield server
    server.shutdown()
    server.server_close()


def run_cli(*args, timeout=600, env=None, cwd=None):
    """Runs train_cifar10.py in a fresh interpreter; returns the CompletedProcess.

    It runs in a new temporary folder (where its runs/ folder lands) and without Comet, unless
    the test says otherwise through env and cwd.
    """
    environment = dict(os.environ, COMET_DISABLE="1")
    environment.update(env or {})
    return subprocess.run([sys.executable, os.path.join(REPO, "train_cifar10.py")] + list(args),
                          capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or tempfile.mkdtemp(prefix="run-cli-"), env=environment)
