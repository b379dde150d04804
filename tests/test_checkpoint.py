"""Checkpoints: exact resume, two-stage training, atomic writes under SIGKILL, bad checkpoints."""
import json
import os
import signal
import subprocess
import sys

import mxnet as mx
import pytest

from helpers import REPO, TIMING, copy_checkpoint, digest, make_state, run_cli, stopped_at



def train(data_dir, prefix, *extra):
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--quiet", "--model-prefix", prefix, *extra)
    assert result.returncode == 0, result.stderr
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    """3 epochs without interruption, a checkpoint after each."""
    prefix = str(tmp_path_factory.mktemp("full") / "m")
    return prefix, train(data_dir, prefix, "--epochs", "3")


def test_a_run_stopped_after_epoch_1_and_resumed_equals_the_uninterrupted_run_bit_for_bit(full_run, data_dir, tmp_path):
    full_prefix, full_metrics = full_run
    prefix = str(tmp_path / "resumed" / "m")
    copy_checkpoint(full_prefix, prefix, 1)  # what a run stopped after epoch 1 leaves
    resumed = train(data_dir, prefix, "--epochs", "3", "--load-epoch", "1")
    assert resumed == full_metrics[1:]
    for ext in ("params", "states"):
        assert digest("%s-0003.%s" % (prefix, ext)) == digest("%s-0003.%s" % (full_prefix, ext))


def test_two_stage_training_continues_with_a_lower_learning_rate(full_run, data_dir, tmp_path):
    full_prefix, _ = full_run
    prefix = str(tmp_path / "stage2" / "m")
    copy_checkpoint(full_prefix, prefix, 3)
    stage2 = train(data_dir, prefix, "--epochs", "5", "--load-epoch", "3", "--lr", "0.01")
    assert [m["epoch"] for m in stage2] == [3, 4]
    # 400 images in batches of 128: 4 updates an epoch, 20 in all. The line restarts from 0.01
    # and continues from the saved update count (12): the last update of epoch 4 is number 20.
    assert stage2[0]["lr"] == pytest.approx(0.01 * (1 - 15 / 20), rel=1e-4)
    assert stage2[1]["lr"] == pytest.approx(0.01 * (1 - 19 / 20), rel=1e-4)
    record = json.load(open(prefix + "-0005.json"))
    assert record["epoch"] == 5 and record["num_update"] == 20


def test_sigkill_in_the_middle_of_a_checkpoint_write_leaves_the_previous_checkpoint_intact(full_run, data_dir, tmp_path):
    full_prefix, _ = full_run
    prefix = str(tmp_path / "killed" / "m")
    copy_checkpoint(full_prefix, prefix, 2)
    before = {ext: digest("%s-0002.%s" % (prefix, ext)) for ext in ("params", "states", "json")}
    # The real writer, killed for real after writing part of the new file.
    code = ("import os, signal, sys; sys.path.insert(0, %r); from common.files import atomic_write\n"
            "with atomic_write(%r) as tmp:\n"
            "    open(tmp, 'wb').write(b'half a checkpoint' * 1000)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n" % (REPO, prefix + "-0002.params"))
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    after = {ext: digest("%s-0002.%s" % (prefix, ext)) for ext in ("params", "states", "json")}
    assert after == before  # only a .part file was left behind
    resumed = train(data_dir, prefix, "--epochs", "3", "--load-epoch", "2")
    assert [m["epoch"] for m in resumed] == [2]


def test_a_checkpoint_whose_json_was_never_written_does_not_exist(full_run, data_dir, tmp_path):
    full_prefix, _ = full_run
    prefix = str(tmp_path / "torn" / "m")
    copy_checkpoint(full_prefix, prefix, 2)
    os.remove(prefix + "-0002.json")  # killed after .params and .states, before the .json
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "3", "--model-prefix", prefix,
                     "--load-epoch", "2")
    assert result.returncode == 1 and "no checkpoint %s-0002" % prefix in result.stderr


def test_a_resumed_run_says_so_in_one_line_naming_the_checkpoint_its_epoch_and_comet(full_run, data_dir, tmp_path):
    full_prefix, _ = full_run
    prefix = str(tmp_path / "resumed" / "m")
    copy_checkpoint(full_prefix, prefix, 2)
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--model-prefix", prefix, "--epochs", "3",
                     "--load-epoch", "2")
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("resuming")]
    assert said == ["resuming from checkpoint %s-0002: 2 of 3 epochs done, the next JSON line is epoch 2; "
                    "Comet is off" % prefix]
    assert json.loads(result.stdout.splitlines()[0])["epoch"] == 2


def test_a_checkpoint_of_a_format_this_code_cannot_read_is_refused_with_one_line(full_run, tmp_path):
    from training import checkpoint

    full_prefix, _ = full_run
    prefix = str(tmp_path / "newer" / "m")
    copy_checkpoint(full_prefix, prefix, 1)
    record = json.load(open(prefix + "-0001.json"))
    assert record["format"] == checkpoint.FORMAT
    json.dump(dict(record, format=checkpoint.FORMAT + 1), open(prefix + "-0001.json", "w"))
    with pytest.raises(checkpoint.CheckpointError, match=r"m-0001.json is a checkpoint of format 2; this code "
                                                         r"reads format 1"):
        checkpoint.read(prefix, 1)


@pytest.mark.parametrize("damage, args, code, message", [
    ("truncate", ["--classes", "0,1", "--epochs", "3"], 1, "m-0001.params is damaged"),
    ("corrupt-json", ["--classes", "0,1", "--epochs", "3"], 1, "m-0001.json is damaged"),
    (None, ["--classes", "0,2", "--epochs", "3"], 1, "holds spec-resnet for classes airplane,automobile"),
])
def test_a_bad_checkpoint_is_one_clear_error_and_nothing_is_overwritten(full_run, data_dir, tmp_path, damage, args, code, message):
    full_prefix, _ = full_run
    prefix = str(tmp_path / "bad" / "m")
    for epoch in (1, 2):
        copy_checkpoint(full_prefix, prefix, epoch)
    if damage == "truncate":
        os.truncate(prefix + "-0001.params", 100)
    elif damage == "corrupt-json":
        with open(prefix + "-0001.json", "w") as f:
            f.write("{not json")
    folder = os.path.dirname(prefix)
    before = {name: digest(os.path.join(folder, name)) for name in os.listdir(folder)}
    result = run_cli("--data-dir", data_dir, "--quiet", "--model-prefix", prefix, "--load-epoch", "1", *args)
    assert result.returncode == code and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    if damage:
        assert errors[0].endswith("resume from another epoch")
    assert {name: digest(os.path.join(folder, name)) for name in os.listdir(folder)} == before


def test_load_epoch_needs_a_prefix_and_an_epoch_to_train(data_dir, usage):
    assert "--load-epoch needs --model-prefix" in usage("--data-dir", data_dir, "--load-epoch", "1")
    assert "--load-epoch 1 leaves nothing to train with --epochs 1" in usage(
        "--data-dir", data_dir, "--model-prefix", "m", "--load-epoch", "1", "--epochs", "1")


def test_resume_continues_the_newest_checkpoint_in_its_run_folder_and_comet_experiment(data_dir, tmp_path):
    prefix = str(tmp_path / "m")
    command = ["--data-dir", data_dir, "--classes", "0,1", "--epochs", "4", "--model-prefix", prefix, "--resume"]
    env = {"COMET_DISABLE": "", "COMET_API_KEY": "", "HOME": str(tmp_path)}  # Comet offline
    first = stopped_at("epoch@2", *command, cwd=str(tmp_path), env=env)
    assert first.returncode == 130, first.stderr
    assert "nothing to resume: no checkpoint %s-NNNN yet; training from epoch 0" % prefix in first.stderr
    (run_dir,) = os.listdir(tmp_path / "runs")
    key = json.load(open(tmp_path / "runs" / run_dir / "status.json"))["comet_experiment"]
    resumed = run_cli(*command, cwd=str(tmp_path), env=env)  # the same command
    assert resumed.returncode == 0, resumed.stderr
    assert ("resuming from checkpoint %s-0002: 2 of 4 epochs done, the next JSON line is epoch 2; "
            "continuing Comet experiment %s" % (prefix, key)) in resumed.stderr
    assert [json.loads(line)["epoch"] for line in resumed.stdout.splitlines()] == [2, 3]
    assert os.listdir(tmp_path / "runs") == [run_dir]  # the same folder, every epoch once
    with open(tmp_path / "runs" / run_dir / "metrics.jsonl") as f:
        assert [json.loads(line)["epoch"] for line in f] == [0, 1, 2, 3]
    assert json.load(open(tmp_path / "runs" / run_dir / "status.json"))["comet_experiment"] == key
    done = run_cli(*command, cwd=str(tmp_path), env=env)  # nothing left to train: one line
    assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith(
        "train_cifar10.py: error: --resume: the newest checkpoint, %s-0004, has all 4 epochs: raise "
        "--epochs to train on" % prefix)


@pytest.mark.parametrize("case", ["continued", "damaged record", "folder gone", "another --output-dir"])
def test_a_resumed_run_continues_its_folder_only_where_that_keeps_every_record(tmp_path, monkeypatch, case):
    from types import SimpleNamespace

    from training import tracking

    monkeypatch.chdir(tmp_path)
    previous = tmp_path / "runs" / "first"
    previous.mkdir(parents=True)
    lines = [json.dumps({"epoch": e, "test_acc": 0.5}) for e in range(4)]  # 4 epochs, checkpoint after 2
    (previous / "metrics.jsonl").write_text("\n".join(lines) + "\n" + ("{broken" if case == "damaged record" else ""))
    if case == "folder gone":
        previous = tmp_path / "runs" / "gone"
    config = SimpleNamespace(output_dir=str(tmp_path / "other") if case == "another --output-dir" else None,
                             run_name="second")
    folder, earlier = tracking.run_folder(config, {"run_dir": str(previous), "epoch": 2})
    if case == "continued":
        assert (folder, [r["epoch"] for r in earlier]) == (str(previous), [0, 1])
    else:
        assert earlier == [] and folder in (os.path.join("runs", "second"), str(tmp_path / "other"))
        assert os.path.isdir(folder)


def test_resume_needs_a_prefix_and_load_epoch_a_number_or_latest(data_dir, usage):
    assert "--resume (--load-epoch latest) needs --model-prefix" in usage("--data-dir", data_dir, "--resume")
    assert "argument --load-epoch: expected an epoch (0 or more) or latest, got 'lates'" in usage(
        "--data-dir", data_dir, "--model-prefix", "m", "--load-epoch", "lates")


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_exits_cleanly_and_says_how_to_resume(data_dir, tmp_path, signal_name):
    prefix = str(tmp_path / "m")
    stopped = stopped_at("epoch@2", "--data-dir", data_dir, "--classes", "0,1", "--epochs", "4",
                         "--model-prefix", prefix, "--output-dir", str(tmp_path / "run"), signal_name=signal_name)
    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.splitlines()[-1] == (
        "stopped by %s during training; 2 of 4 epochs done. The latest checkpoint is %s-0002: resume "
        "with the same command and --resume (--load-epoch 2)." % (signal_name, prefix))
    assert "Traceback" not in stopped.stderr
    assert len(stopped.stdout.splitlines()) == 2 and open(str(tmp_path / "run" / "metrics.jsonl")).read() == stopped.stdout
    resumed = train(data_dir, prefix, "--epochs", "3", "--load-epoch", "2")
    assert [m["epoch"] for m in resumed] == [2]


def test_with_a_save_period_only_those_epochs_and_the_last_are_kept(data_dir, tmp_path):
    prefix = str(tmp_path / "m")
    train(data_dir, prefix, "--epochs", "5", "--save-period", "2")
    assert sorted(os.listdir(tmp_path)) == sorted(["m-0005.bnstats"] + ["m-%04d.%s" % (e, ext) for e in (2, 4, 5)
                                                                     for ext in ("params", "states", "json")])


def test_an_interrupt_between_save_periods_still_saves_the_last_completed_epoch(data_dir, tmp_path):
    prefix = str(tmp_path / "m")
    # Stopped in the third epoch's second batch (4 batches an epoch): epoch 2 was pending.
    stopped = stopped_at("training@10", "--data-dir", data_dir, "--classes", "0,1", "--epochs", "4",
                         "--save-period", "50", "--model-prefix", prefix, "--quiet")
    assert stopped.returncode == 130, stopped.stderr
    assert "--resume (--load-epoch 2)." in stopped.stderr
    assert sorted(os.listdir(str(tmp_path))) == sorted("m-0002.%s" % ext for ext in ("params", "states", "json"))
    resumed = train(data_dir, prefix, "--epochs", "3", "--load-epoch", "2")
    assert [m["epoch"] for m in resumed] == [2]


def test_an_interrupt_while_the_previous_pending_epoch_is_removed_still_publishes_a_complete_epoch(tmp_path, monkeypatch):
    # CI once caught SIGINT between two removals of the older pending epoch's files: the saver
    # then tried to publish the half-removed epoch. The interrupt is injected at that moment.
    from training import checkpoint
    state = make_state([mx.cpu()])
    saver = checkpoint.Saver(str(tmp_path / "m"), period=50, meta={"model": "spec-resnet", "class_names": ["a", "b"]})
    state.epoch = 1
    saver.after_epoch(state, last=False)
    state.epoch = 2
    real_remove = os.remove

    def interrupted_remove(path):
        real_remove(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "remove", interrupted_remove)
    with pytest.raises(KeyboardInterrupt):
        saver.after_epoch(state, last=False)
    monkeypatch.setattr(os, "remove", real_remove)
    assert saver.publish_pending() == 2
    assert checkpoint.read(str(tmp_path / "m"), 2)["epoch"] == 2  # sizes and checksums verified
    assert sorted(os.listdir(str(tmp_path))) == ["m-0002.%s" % ext for ext in ("json", "params", "states")]


def test_atomically_written_files_and_folders_get_the_permissions_a_plain_write_gives(tmp_path):
    from common.files import atomic_write

    old = os.umask(0o022)
    try:
        with atomic_write(str(tmp_path / "file")) as tmp, open(tmp, "w") as f:
            f.write("x")
        with atomic_write(str(tmp_path / "folder"), folder=True) as tmp:
            pass
        open(str(tmp_path / "plain"), "w").close()
        os.mkdir(str(tmp_path / "plain-folder"))
    finally:
        os.umask(old)
    modes = {name: os.stat(str(tmp_path / name)).st_mode & 0o777 for name in os.listdir(str(tmp_path))}
    assert modes == {"file": 0o644, "folder": 0o755, "plain": 0o644, "plain-folder": 0o755}


def test_a_checkpoint_whose_weights_do_not_fit_is_one_error_and_the_run_folder_says_failed(full_run, data_dir, tmp_path):
    # Its record is intact (sizes and checksums updated), but its weights are a 3-class network's.
    from models import SpecResNet
    from training import checkpoint

    full_prefix, _ = full_run
    prefix = str(tmp_path / "ck" / "m")
    copy_checkpoint(full_prefix, prefix, 1)
    other = SpecResNet(3)
    other.initialize()
    other(mx.nd.zeros((2, 3, 32, 32)))
    other.save_parameters(prefix + "-0001.params")
    record = json.load(open(prefix + "-0001.json"))
    record["files"]["params"].update(bytes=os.path.getsize(prefix + "-0001.params"), md5=digest(prefix + "-0001.params"))
    json.dump(record, open(prefix + "-0001.json", "w"))
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--quiet", "--model-prefix",
                     prefix, "--load-epoch", "1", "--output-dir", tmp_path / "run")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: %s-0001.params does not fit this network (" % prefix)
    status = json.load(open(tmp_path / "run" / "status.json"))
    assert status["status"] == "failed" and "does not fit this network" in status["reason"]
    assert checkpoint.latest(prefix) == 1  # nothing written over it
