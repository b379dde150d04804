"""sweep.py: trials that are real train_cifar10.py runs, on real Optuna studies in SQLite and in a
real PostgreSQL server (pgserver: the tests start one; skipped with the reason where none can
start). Pruning, a stopped and restarted sweep, two workers on one study, a worker killed with
kill -9, what the sweep folder holds, that no secret leaks, and every bad input before any trial.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from helpers import REPO, archive_messages, experiment_json, json_lines, run_command, script_env

optuna = pytest.importorskip("optuna", reason="sweeps need Optuna: pip install -r requirements-sweep.txt")

TRAIN = ["--classes", "0,1", "--quiet"]  # the trials' shared flags, besides --data-dir and --epochs
OFFLINE = {"COMET_DISABLE": ""}  # Comet on: with the fake key below it cannot go online, so offline archives
PASSWORD = "pw-s3cret-4711"
pytestmark = pytest.mark.filterwarnings("ignore:.*is experimental")  # Optuna's heartbeat retry helpers
COMET_KEY = "cometkey-s3cret-0815"


def sweep(*args, cwd, env=None):
    return run_command("sweep.py", *args, cwd=str(cwd), env=env)


def start_sweep(*args, cwd, env=None):
    """sweep.py ARGS started in the background, in a process group of its own (for Ctrl-C)."""
    def own_group():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setpgrp()
    return subprocess.Popen([sys.executable, os.path.join(REPO, "sweep.py")] + [str(a) for a in args],
                            cwd=str(cwd), env=script_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=own_group)


def table(folder):
    with open(os.path.join(folder, "trials.csv")) as f:
        return list(csv.DictReader(f))


def study_trials(storage, name):
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def files_below(folder):
    """Every file's bytes below folder, the members of zip archives (Comet's) included."""
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".zip"):
                with zipfile.ZipFile(path) as z:
                    for member in z.namelist():
                        yield path + ":" + member, z.read(member)
            else:
                yield path, open(path, "rb").read()


def assert_no_secret(texts, folders):
    for secret in (PASSWORD, COMET_KEY):
        for text in texts:
            assert secret not in text
        for folder in folders:
            assert [path for path, data in files_below(folder) if secret.encode() in data] == []


# ----------------------------------------------------------------------------------------------
# One sweep in SQLite

@pytest.fixture(scope="module")
def two_trials(data_dir, tmp_path_factory):
    """A default sweep of two 2-epoch trials of the 2-class task, Comet on (offline)."""
    folder = tmp_path_factory.mktemp("sweep")
    result = sweep("--trials", "2", "--study", "s", "--", "--data-dir", data_dir, *TRAIN, "--epochs", "2",
                   cwd=folder, env=dict(OFFLINE, HOME=str(folder), COMET_API_KEY=COMET_KEY))
    return folder, result


def test_each_trial_is_a_run_of_its_own_with_the_suggested_flags(two_trials):
    folder, result = two_trials
    assert result.returncode == 0, result.stderr
    sweep_dir = folder / "sweeps" / "s"
    rows, lines = table(sweep_dir), json_lines(result)
    assert [r["number"] for r in rows] == ["0", "1"] and [line["number"] for line in lines] == [0, 1]
    for row in rows:
        assert row["state"] == "complete" and row["outcome"] == "finished"
        run_dir = row["run_folder"]
        assert run_dir == str(sweep_dir / "runs" / ("trial-%04d" % int(row["number"])))
        config = json.load(open(os.path.join(run_dir, "config.json")))
        flags = row["flags"].split()
        suggested = dict(zip(flags[::2], flags[1::2]))
        assert sorted(suggested) == ["--batch-size", "--lr", "--momentum", "--wd"]
        assert (config["lr"], config["batch_size"], config["momentum"], config["wd"]) == (
            float(suggested["--lr"]), int(suggested["--batch-size"]), float(suggested["--momentum"]),
            float(suggested["--wd"]))
        assert 0.02 <= config["lr"] <= 0.5 and 0.8 <= config["momentum"] <= 0.95 and 1e-5 <= config["wd"] <= 1e-3
        records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
        assert float(row["test_acc"]) == records[-1]["test_acc"] and len(records) == 2
        assert os.path.isfile(os.path.join(run_dir, "checkpoint-0002.params"))
        # its Comet experiment: named and tagged with the study and the trial
        archive, messages = archive_messages(run_dir)
        experiment = experiment_json(archive)
        assert row["comet_experiment"] == experiment["offline_id"]
        assert {"study-s", "trial-%s" % row["number"], "group-s"} <= set(experiment["tags"])
        params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
                  for m in messages if m["type"] == "parameter_msg"}
        assert params["run_name"] == "s-trial-%s" % row["number"] and float(params["lr"]) == config["lr"]


def test_the_sweep_folder_holds_the_table_the_best_command_and_the_plots(two_trials):
    folder, result = two_trials
    sweep_dir = folder / "sweeps" / "s"
    rows = table(sweep_dir)
    best = max(rows, key=lambda r: (float(r["test_acc"]), -int(r["number"])))
    command = (sweep_dir / "best_command.txt").read_text().strip()
    assert command.endswith(best["flags"]) and command.startswith("python train_cifar10.py --data-dir ")
    assert "best trial's command:\n  %s" % command in result.stderr
    for plot in ("optimization_history", "param_importances", "parallel_coordinate"):
        assert (sweep_dir / (plot + ".png")).read_bytes()[:4] == b"\x89PNG"
    archive, messages = archive_messages(sweep_dir)  # the study's own experiment
    assert {"sweep", "study-s"} <= set(experiment_json(archive)["tags"])
    assert {"optimization_history.png", "param_importances.png", "parallel_coordinate.png"} <= {
        m["payload"]["additional_params"].get("figName") for m in messages if m["type"] == "file_upload"}


def test_compare_runs_reads_a_sweeps_run_folders(two_trials):
    folder, _ = two_trials
    result = run_command("tools/compare_runs.py", folder / "sweeps" / "s", "--plot", folder / "c.png")
    assert result.returncode == 0, result.stderr
    assert "s-trial-0" in result.stdout and "s-trial-1" in result.stdout


def test_no_comet_key_reaches_a_file_or_a_line(two_trials):
    folder, result = two_trials  # Comet on, with a key (PostgreSQL's test below has a password too)
    assert_no_secret([result.stdout, result.stderr], [folder / "sweeps"])


# ----------------------------------------------------------------------------------------------
# Pruning, failures, restarts

def test_a_pruned_trial_stops_before_its_last_epoch_as_ctrl_c_stops_a_run(data_dir, tmp_path):
    # The metric is the learning rate (lower is better here): trial 0 runs --lr 0.001 (the grid's
    # order for seed 0), trial 1's --lr 0.1 is worse at every epoch and is pruned after its first.
    (tmp_path / "space.json").write_text('{"lr": [0.1, 0.001]}')
    result = sweep("--trials", "2", "--space", "space.json", "--sampler", "grid", "--sampler-seed", "0",
                   "--metric", "lr", "--direction", "minimize", "--prune-startup-trials", "1",
                   "--prune-warmup-epochs", "0", "--", "--data-dir", data_dir, *TRAIN, "--epochs", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = table(tmp_path / "sweeps" / "spec-resnet_c0-1")
    assert [(r["flags"], r["state"], r["outcome"]) for r in rows] == [
        ("--lr 0.001", "complete", "finished"), ("--lr 0.1", "pruned", "pruned")]
    assert float(rows[1]["lr"]) == 0.0875  # the table's value column is the metric's
    run_dir = rows[1]["run_folder"]
    status = json.load(open(os.path.join(run_dir, "status.json")))
    assert status["status"] == "pruned" and "SIGUSR1 (the sweep pruned this trial)" in status["reason"]
    epochs = status["epochs_logged"]
    assert 1 <= epochs < 6 and os.path.isfile(os.path.join(run_dir, "checkpoint-%04d.params" % epochs))
    trials = study_trials("sqlite:///%s/sweeps/spec-resnet_c0-1/study.db" % tmp_path, "spec-resnet_c0-1")
    assert trials[1].state == optuna.trial.TrialState.PRUNED and trials[1].intermediate_values[1] == 0.0875


def test_a_stopped_sweep_continues_where_it_stopped_and_runs_the_interrupted_trial_again(data_dir, tmp_path):
    common = ["--trials", "2", "--", "--data-dir", data_dir, *TRAIN, "--epochs", "3"]
    # trial 0's run stops itself at its 2nd epoch with SIGINT, as Ctrl-C would: the sweep stops too
    stopped = sweep(*common, cwd=tmp_path, env={"CIFAR_STOP_AT": "epoch@2"})
    assert stopped.returncode == 130, stopped.stderr
    assert "the same command continues it" in stopped.stderr.splitlines()[-1]
    restarted = sweep(*common, cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert "trial 0 stopped unfinished: run again first" in restarted.stderr
    rows = table(tmp_path / "sweeps" / "spec-resnet_c0-1")
    assert [(r["state"], r["outcome"]) for r in rows] == [
        ("fail", "interrupted"), ("complete", "finished"), ("complete", "finished")]
    assert rows[1]["flags"] == rows[0]["flags"]  # trial 0 again
    assert [line["number"] for line in json_lines(restarted)] == [1, 2]  # 2 counted: 1 and 2
    assert json.load(open(os.path.join(rows[0]["run_folder"], "status.json")))["status"] == "interrupted"


def test_ctrl_c_stops_the_sweep_and_its_run_with_one_line(data_dir, tmp_path):
    process = start_sweep("--trials", "3", "--", "--data-dir", data_dir, *TRAIN, "--epochs", "30", cwd=tmp_path)
    metrics = tmp_path / "sweeps" / "spec-resnet_c0-1" / "runs" / "trial-0000" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.splitlines()[-1].startswith("stopped by SIGINT during trial 0; the study keeps every ended trial")
    assert [(r["state"], r["outcome"]) for r in table(tmp_path / "sweeps" / "spec-resnet_c0-1")] == [("fail", "interrupted")]


def test_a_diverged_trial_fails_and_the_sweep_goes_on(data_dir, tmp_path):
    (tmp_path / "space.json").write_text('{"lr": [1e12]}')
    result = sweep("--trials", "2", "--space", "space.json", "--sampler", "random", "--",
                   "--data-dir", data_dir, *TRAIN, "--epochs", "1", cwd=tmp_path)
    rows = table(tmp_path / "sweeps" / "spec-resnet_c0-1")
    assert [(r["state"], r["outcome"]) for r in rows] == [("fail", "diverged")] * 2
    assert result.returncode == 1 and result.stderr.splitlines()[-1].startswith(
        "error: no trial of study spec-resnet_c0-1 completed")


def test_a_trial_that_ends_in_an_error_stops_the_sweep(tmp_path):
    result = sweep("--trials", "3", "--", "--data-dir", str(tmp_path / "empty"), "--data-url",
                   "http://127.0.0.1:9/cifar-10-binary.tar.gz", *TRAIN, cwd=tmp_path)
    assert result.returncode == 1
    assert "error: trial 0's run ended with exit code 1 (its error is above); the sweep stops" in result.stderr
    assert [r["outcome"] for r in table(tmp_path / "sweeps" / "spec-resnet_c0-1")] == ["failed (exit 1)"]


# ----------------------------------------------------------------------------------------------
# Bad input: one line before any trial runs

@pytest.fixture
def sweep_main(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    from commands import sweep as sweep_command

    return sweep_command.main


@pytest.mark.parametrize("space, args, message", [
    ('{"learning-rate": [0.1]}', [], "--learning-rate is not a train_cifar10.py flag"),
    ('{"lr": {"type": "float", "low": 0, "high": 0.5, "log": true}}', [], "--lr: impossible distribution"),
    ('{"lr": {"type": "float", "low": 0.5, "high": 0.1}}', [], "--lr: impossible distribution"),
    ('{"lr": {"type": "normal", "mean": 0.1}}', [], "--lr: expected a list of values or"),
    ('{"batch-size": {"type": "float", "low": 64, "high": 256}}', [], "argument --batch-size: expected a whole number"),
    ('{"augment": [1, 2]}', [], "--augment is a switch: give it as [true, false]"),
    ('{"lr": [0.1]}', ["--lr", "0.2"], "--lr is both in the training flags after -- and in the search space"),
    ('{"output-dir": ["a"]}', [], "--output-dir cannot be swept"),
    ('{"lr": {"type": "float", "low": 0.01, "high": 0.5}}', ["GRID"], "--sampler grid needs a list of values or a step"),
    ('{"lr": [0.1}', [], "space.json is not valid JSON"),
    (None, ["--epochs", "x"], "training flags after --: train_cifar10.py would refuse --epochs x: argument --epochs"),
    (None, ["--model-prefix", "m"], "--model-prefix cannot be given to the trials"),
    (None, ["TTA"], "--metric tta_test_acc needs --tta-level 1 or 2"),
])
def test_a_bad_space_or_flag_is_one_line_before_any_trial(sweep_main, usage, tmp_path, space, args, message):
    ours = ["--trials", "2"]
    if space is not None:
        (tmp_path / "space.json").write_text(space)
        ours += ["--space", "space.json"]
    if args[:1] == ["GRID"]:
        ours, args = ours + ["--sampler", "grid"], args[1:]
    if args[:1] == ["TTA"]:
        ours, args = ours + ["--metric", "tta_test_acc"], args[1:]
    line = usage(*ours, "--", *args, main=sweep_main)
    assert message in line
    assert not os.path.exists(tmp_path / "sweeps" / "spec-resnet_c0-1" / "runs")


def test_a_space_file_in_yaml_and_a_missing_one(sweep_main, usage, tmp_path):
    from commands import sweep_space

    (tmp_path / "space.yaml").write_text("lr: {type: float, low: 0.01, high: 0.2, log: true}\n"
                                         "augment: [true, false]\nepochs: {type: int, low: 2, high: 6, step: 2}\n")
    spec, params = sweep_space.load(str(tmp_path / "space.yaml"), [])
    assert [p.flag for p in params] == ["--lr", "--augment", "--epochs"]
    assert params[1].args(True) == ["--augment"] and params[1].args(False) == []
    assert params[2].grid() == [2, 4, 6]
    assert "cannot read missing.json" in usage("--trials", "1", "--space", "missing.json", main=sweep_main)


@pytest.mark.parametrize("url, message", [
    ("nosuchdb://x/y", "--storage nosuchdb://x/y cannot be opened"),
    ("postgresql://user:%s@127.0.0.1:9/db" % PASSWORD, "--storage postgresql://user:***@127.0.0.1:9/db cannot be opened"),
])
def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password(sweep_main, capsys, url, message):
    capsys.readouterr()
    assert sweep_main(["--trials", "1", "--storage", url]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("error: %s" % message), err
    assert PASSWORD not in err and not os.path.exists("sweeps")


# ----------------------------------------------------------------------------------------------
# Several workers on one PostgreSQL study

@pytest.fixture(scope="module")
def postgresql(tmp_path_factory):
    """A PostgreSQL server of the test's own (pgserver's binaries), and its URL with a password
    (the server trusts local connections, so it is only carried, as a real one would be)."""
    pgserver = pytest.importorskip("pgserver", reason="no pgserver (requirements-test.txt) to start PostgreSQL")
    try:
        server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    except Exception as e:  # noqa: BLE001 - whatever stops the server from starting
        pytest.skip("PostgreSQL could not start here: %s" % e)
    yield server.get_uri().replace("postgres:@", "postgres:%s@" % PASSWORD)
    server.cleanup()


def test_two_workers_share_one_study_and_no_trial_runs_twice(postgresql, data_dir, tmp_path):
    args = ["--trials", "3", "--study", "shared", "--storage", postgresql, "--", "--data-dir", data_dir,
            *TRAIN, "--epochs", "2"]
    env = dict(OFFLINE, HOME=str(tmp_path), COMET_API_KEY=COMET_KEY)
    other = start_sweep("--sweep-dir", tmp_path / "a", *args, cwd=tmp_path, env=env)  # while this process runs b
    this = sweep("--sweep-dir", tmp_path / "b", *args, cwd=tmp_path, env=env)
    outputs = [other.communicate(timeout=600), (this.stdout, this.stderr)]
    assert other.returncode == 0 and this.returncode == 0, outputs
    ran = [[line["number"] for line in json_lines(out)] for out, _ in outputs]
    trials = study_trials(postgresql, "shared")
    assert all(ran) and sorted(ran[0] + ran[1]) == [t.number for t in trials]  # shared out, none twice
    assert len(trials) >= 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for name, numbers in zip("ab", ran):
        assert sorted(os.listdir(tmp_path / name / "runs")) == ["trial-%04d" % n for n in sorted(numbers)]
    assert_no_secret([text for pair in outputs for text in pair], [tmp_path / "a", tmp_path / "b"])


def test_a_worker_killed_with_kill_9_has_its_trial_run_again_by_another(postgresql, data_dir, tmp_path):
    args = ["--trials", "1", "--study", "killed", "--storage", postgresql, "--heartbeat", "1", "--",
            "--data-dir", data_dir, *TRAIN, "--epochs", "5"]  # long enough to be killed within
    doomed = start_sweep("--sweep-dir", tmp_path / "a", *args, cwd=tmp_path)
    run_dir = tmp_path / "a" / "runs" / "trial-0000"
    deadline = time.time() + 120
    while not ((run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").read_text()) \
            and time.time() < deadline:
        time.sleep(0.1)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=60)  # returns when the run, which shares its stderr, has ended too
    # its run got SIGTERM (once for each thread of the sweep) and recorded the stop
    assert json.load(open(run_dir / "status.json"))["status"] == "interrupted"
    time.sleep(3)  # more than two missed heartbeats
    other = sweep("--sweep-dir", tmp_path / "b", *args, cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert "trial 1 (trial 0 again)" in other.stderr
    lost, retry = study_trials(postgresql, "killed")
    assert lost.state == optuna.trial.TrialState.FAIL and retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.params == lost.params
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
