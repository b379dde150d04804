"""A clean stop at any moment: Ctrl-C or SIGTERM (or a sweep's SIGUSR1) at each stage of a run, from start-up to the
Comet upload, ends with one line and exit code 130, status.json `interrupted` where the run
folder exists, the Comet experiment ended, and no half-written file.

Each run stops itself at a named point (CIFAR_STOP_AT, common/interrupts.py), so the stop
comes at that stage every time, however fast the machine.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import REPO, archive_messages, experiment_json, script_env, stopped_at

OFFLINE = {"COMET_DISABLE": "", "COMET_API_KEY": ""}  # Comet on without a key: an offline archive
HALF_WRITTEN = (".part",)  # what common.files.atomic_write names a file or folder being written


def leftovers(folder):
    """Files and folders below folder that only an unfinished write leaves."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if name.endswith(HALF_WRITTEN) or name.startswith((".export-", ".pending-")):
                found.append(os.path.join(root, name))
    return found


def assert_stopped(result, stage, signal_name="SIGINT"):
    """Exit code 130 and one line on stderr, naming the signal (and a sweep's pruning) and the stage."""
    assert result.returncode == 130, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith(("Comet: ", "  comet upload"))]
    said = signal_name + (" (the sweep pruned this trial)" if signal_name == "SIGUSR1" else "")
    assert len(lines) == 1 and lines[0].startswith("stopped by %s during %s; " % (said, stage)), result.stderr
    return lines[0]


@pytest.mark.parametrize("stage", ["start-up", "preparation", "network build"])
def test_a_stop_before_the_run_folder_exists_writes_nothing(data_dir, tmp_path, stage):
    result = stopped_at(stage, "--data-dir", data_dir, "--classes", "0,1", "--model-prefix", tmp_path / "m",
                        cwd=str(tmp_path))
    line = assert_stopped(result, stage)
    assert os.listdir(tmp_path) == [] and result.stdout == ""
    if stage != "start-up":
        assert line.endswith("no run folder was made yet, nothing was written")


def test_a_stop_during_the_download_leaves_no_part_of_it(tmp_path, http_server, good_archive):
    blob, _ = good_archive
    url = http_server.serve("/cifar-10-binary.tar.gz", blob)
    # a process of its own: the server's thread would write its dropped connection to the run's stderr
    result = stopped_at("download@2", "--data-dir", tmp_path / "new" / "cifar10", "--data-url", url,
                        cwd=str(tmp_path), process=True)
    assert_stopped(result, "download")
    assert os.listdir(tmp_path) == []  # the folders it made for the download are gone too


def test_a_stop_during_the_extraction_leaves_no_part_of_it(tmp_path, good_archive, monkeypatch):
    # Through the command line a synthetic archive never passes the official md5; the stop is
    # raised here in-process, as the installed handler raises it in a command.
    from common import interrupts
    from data.cifar import download_and_extract

    blob, md5 = good_archive
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(blob)
    monkeypatch.setattr(interrupts, "_reached", {})  # counted from here: other tests extracted in this process
    monkeypatch.setenv("CIFAR_STOP_AT", "extraction@3")
    monkeypatch.setenv("CIFAR_STOP_SIGNAL", "SIGTERM")
    previous = signal.signal(signal.SIGTERM, interrupts._raise)
    try:
        with pytest.raises(interrupts.Interrupted):
            download_and_extract(str(tmp_path), url="http://127.0.0.1:9/unused", md5=md5, progress=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert interrupts.stage() == "extraction"
    assert os.listdir(tmp_path) == ["cifar-10-binary.tar.gz"]  # the verified archive stays


@pytest.mark.parametrize("stop, stage, signal_name", [
    ("training@3", "training", "SIGINT"),
    ("epoch@1", "training", "SIGTERM"),
    ("epoch@1", "training", "SIGUSR1"),  # sweep.py prunes a trial so
    ("population statistics@2", "population statistics", "SIGINT"),
    ("export files", "export", "SIGTERM"),
    ("upload", "upload", "SIGINT"),
])
def test_a_stop_after_the_run_folder_exists_is_recorded_and_ends_comet(data_dir, tmp_path, stop, stage, signal_name):
    run_dir, prefix, export = tmp_path / "run", str(tmp_path / "ckpt" / "m"), str(tmp_path / "ex" / "spec")
    result = stopped_at(stop, "--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--quiet",
                        "--output-dir", run_dir, "--model-prefix", prefix, "--export", export,
                        signal_name=signal_name, env=dict(OFFLINE, HOME=str(tmp_path)), cwd=str(tmp_path))
    line = assert_stopped(result, stage, signal_name)
    status = json.load(open(run_dir / "status.json"))
    assert status["status"] == ("pruned" if signal_name == "SIGUSR1" else "interrupted") and status["reason"] == line
    epochs_done = {"training@3": 0, "epoch@1": 1}.get(stop, 2)
    assert status["epochs_logged"] == epochs_done == len(result.stdout.splitlines())
    archive, messages = archive_messages(run_dir)  # written when the experiment ends
    assert status["comet_experiment"] == experiment_json(archive)["offline_id"]
    assert ("pruned" in experiment_json(archive)["tags"]) == (signal_name == "SIGUSR1")
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert (others["status"], others["reason"]) == (status["status"], line) and "failure" not in others
    assert leftovers(tmp_path) == []
    assert os.path.exists(export + "-meta.json") == (stage == "upload")  # an export is whole or absent
    if epochs_done:
        assert "resume with the same command and --resume (--load-epoch %d)" % epochs_done in line
    if stage == "export":
        assert os.listdir(tmp_path / "ex") == []


def test_a_run_started_with_sigint_ignored_ignores_it_throughout_and_stops_on_sigterm(data_dir, tmp_path):
    # A background job of a non-interactive shell starts with SIGINT ignored: one handling for
    # the whole run, so SIGINT changes nothing and SIGTERM still stops it cleanly.
    def ignoring_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def run(signal_name):
        return subprocess.run([sys.executable, os.path.join(REPO, "train_cifar10.py"), "--data-dir", data_dir,
                               "--classes", "0,1", "--epochs", "2", "--quiet", "--output-dir", "run"],
                              capture_output=True, text=True, timeout=300, cwd=str(tmp_path / signal_name),
                              preexec_fn=ignoring_sigint,
                              env=script_env(dict(CIFAR_STOP_AT="epoch@1", CIFAR_STOP_SIGNAL=signal_name)))

    for name in ("SIGINT", "SIGTERM"):
        (tmp_path / name).mkdir()
    ignored, stopped = run("SIGINT"), run("SIGTERM")
    assert ignored.returncode == 0 and len(ignored.stdout.splitlines()) == 2, ignored.stderr
    assert json.load(open(tmp_path / "SIGINT" / "run" / "status.json"))["status"] == "finished"
    assert_stopped(stopped, "training", "SIGTERM")
    assert json.load(open(tmp_path / "SIGTERM" / "run" / "status.json"))["status"] == "interrupted"


def test_a_seed_group_stops_at_the_first_run_that_does_not_finish(data_dir, tmp_path):
    # Every run of the group gets the stop point: the first one stops after its first epoch.
    result = stopped_at("epoch@1", "--data-dir", data_dir, "--classes", "0,1", "--epochs", "2",
                        "--seeds", "1,2", "--run-group", "g", cwd=str(tmp_path))
    assert result.returncode == 130, result.stderr
    assert "seed group g: seed 1 (1 of 2)" in result.stderr and "seed 2 (2 of 2)" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("seed group g: the run of seed 1 ended with exit code 130; "
                                              "the seeds after it did not run")
    assert os.listdir(tmp_path / "runs") == ["g-seed1"]
    assert json.load(open(tmp_path / "runs" / "g-seed1" / "status.json"))["status"] == "interrupted"


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGUSR1"])
def test_the_signal_that_stopped_a_run_again_does_not_cut_its_record_short(signal_name):
    # A sweep killed with kill -9 sends its run SIGTERM from each of its threads as they end.
    from common import interrupts

    signum = getattr(signal, signal_name)
    previous = signal.signal(signum, interrupts._raise)
    try:
        written = []
        with interrupts.stopping(interrupts.Interrupted(signum)):
            os.kill(os.getpid(), signum)
            written.append("status.json")
        assert written == ["status.json"]
        with pytest.raises(interrupts.Interrupted):  # the handler is back after the block
            os.kill(os.getpid(), signum)
            [None for _ in range(1000)]  # Python runs the handler between bytecodes
    finally:
        signal.signal(signum, previous)


def test_a_second_ctrl_c_while_a_run_stops_stops_it_at_once():
    from common import interrupts

    previous = signal.signal(signal.SIGINT, interrupts._raise)
    try:
        with pytest.raises(interrupts.Interrupted):
            with interrupts.stopping(interrupts.Interrupted(signal.SIGINT)):
                os.kill(os.getpid(), signal.SIGINT)
                [None for _ in range(1000)]  # Python runs the handler between bytecodes
    finally:
        signal.signal(signal.SIGINT, previous)
