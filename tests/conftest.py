"""Shared fixtures: CIFAR-10 files in the official binary layout (written once for all workers),
archives of them, a local server.
(Helpers that are not fixtures: helpers.py.)"""
import fcntl
import hashlib
import http.server
import os
import signal
import threading
import warnings

import pytest

from common import cpu, runtime
from helpers import BATCH_NAMES, COARSE_NAMES, FINE_NAMES, cifar100_records, make_tar_gz, synthetic_records, write_files


def pytest_xdist_auto_num_workers(config):
    """-n auto (pytest.ini): a worker per core and one more. Many tests wait on processes they
    started (trials, launch.py's jobs, a run stopping); the extra worker keeps every core busy
    meanwhile."""
    return cpu.usable_cores() + 1


def pytest_configure(config):
    """The test process is an entry point too: ready before any test module loads MXNet. With
    pytest-xdist's workers (pytest.ini: -n auto) each worker, and every process it starts, gets
    its share of the cores, as launch.py gives its workers theirs: OpenMP threads beyond the
    cores spin against each other. A user's OMP_NUM_THREADS wins. (The workers inherit this
    process's environment.)"""
    # Started with SIGINT ignored (in the background of a non-interactive shell), this process and
    # every run in it would keep ignoring it, as a command must (common.interrupts): the tests
    # that stop a run with SIGINT need it delivered, as to a command typed at a terminal.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu.usable_cores() // workers)))
    with warnings.catch_warnings():  # MXNet's import uses what newer numpy/setuptools deprecate
        warnings.simplefilter("ignore", DeprecationWarning)
        runtime.prepare()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests that use a module-scoped fixture (a training run several tests read) form one
    pytest-xdist group per module (pytest.ini: --dist loadgroup): one worker makes the fixture
    once and runs them all."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        scopes = {d.scope for defs in definitions.name2fixturedefs.values() for d in defs}
        if "module" in scopes:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def shared_folder(tmp_path_factory, name, write):
    """A folder of the test session that every pytest-xdist worker reads: the first to ask writes
    it (write(folder)), under a lock, the others wait for it. Read-only for the tests."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    folder = root / name
    with open(root / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").exists():
            write(folder)
            (folder / ".complete").touch()
    return folder


def read_files(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir() if not path.name.startswith(".")}


@pytest.fixture(scope="session")
def cifar10_folder(tmp_path_factory):
    """A complete synthetic CIFAR-10 in the official binary layout, as the archive extracts."""
    def write(folder):
        files = {name: synthetic_records(seed) for seed, name in enumerate(BATCH_NAMES)}
        files["batches.meta.txt"] = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
        write_files(folder / "cifar-10-batches-bin", files)
    return shared_folder(tmp_path_factory, "cifar", write)


@pytest.fixture(scope="session")
def batch_files(cifar10_folder):
    """{file name: bytes} of a complete synthetic CIFAR-10 in the official binary layout."""
    return read_files(cifar10_folder / "cifar-10-batches-bin")


@pytest.fixture(scope="session")
def cifar100_folder(tmp_path_factory):
    """A complete synthetic CIFAR-100 in the official binary layout, as the archive extracts."""
    def write(folder):
        write_files(folder / "cifar-100-binary",
                    {"train.bin": cifar100_records(0, 50000), "test.bin": cifar100_records(1, 10000),
                     "fine_label_names.txt": ("\n".join(FINE_NAMES) + "\n").encode(),
                     "coarse_label_names.txt": ("\n".join(COARSE_NAMES) + "\n").encode()})
    return shared_folder(tmp_path_factory, "cifar100", write)


@pytest.fixture(scope="session")
def cifar100_files(cifar100_folder):
    """{file name: bytes} of cifar100_folder's files."""
    return read_files(cifar100_folder / "cifar-100-binary")


@pytest.fixture(scope="session")
def data_dir(cifar10_folder):
    """A data dir holding cifar-10-batches-bin/, as the official archive extracts (read-only use)."""
    return str(cifar10_folder)


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


@pytest.fixture
def usage(capsys, monkeypatch):
    """usage(*ARGS) -> the one `error:` line of the usage error train_cifar10.py ARGS gives, found
    in-process (main(argv) raising SystemExit(2), nothing on stdout); Comet off, as run_cli has it.
    usage(*ARGS, main=other_main) for another command."""
    from commands import train
    from helpers import usage_error

    monkeypatch.setenv("COMET_DISABLE", "1")
    return lambda *args, main=train.main: usage_error(main, [str(a) for a in args], capsys)
