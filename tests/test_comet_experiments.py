"""Comet as its users use it: one experiment per training across resumes, the user's Comet
settings respected, seed groups, and the comparison of groups in the run folders."""
import json
import os
import re
import zipfile

import pytest

from helpers import json_lines, run_cli, run_command, stopped_at, without_timing

OFFLINE = {"COMET_DISABLE": "", "COMET_API_KEY": ""}  # Comet on, no key: offline archives


def archive_of(run_dir):
    archives = [os.path.join(run_dir, "comet", f) for f in os.listdir(os.path.join(run_dir, "comet"))]
    assert len(archives) == 1, archives
    with zipfile.ZipFile(archives[0]) as z:
        return (json.loads(z.read("experiment.json")),
                [json.loads(line) for line in z.read("messages.json").decode().splitlines()])


def epoch_metrics(messages):
    """[(epoch, step)] of the test accuracies an archive holds."""
    return [(m["payload"]["metric"]["epoch"], m["payload"]["metric"]["step"]) for m in messages
            if m["type"] == "metric_msg" and m["payload"]["metric"]["metricName"] == "test_acc"]


def others(messages):
    return {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}


def test_a_training_stopped_resumed_and_continued_is_one_experiment_with_every_epoch_once(data_dir, tmp_path):
    prefix, home = str(tmp_path / "ck" / "m"), str(tmp_path)
    common = ["--data-dir", data_dir, "--classes", "0,1", "--model-prefix", prefix, "--quiet"]
    # Stage 1: 4 epochs, stopped by Ctrl-C once epoch 2 is saved.
    first = stopped_at("epoch@2", *common, "--epochs", "4", "--output-dir", str(tmp_path / "run1"),
                       env=dict(HOME=home, **OFFLINE))
    assert first.returncode == 130, first.stderr
    stopped = 2
    # The same command resumes it to the end; then a second stage at a lower rate.
    talking = [arg for arg in common if arg != "--quiet"]  # it says which experiment it continues
    resumed = run_cli(*talking, "--epochs", "4", "--load-epoch", str(stopped), "--output-dir",
                      str(tmp_path / "run2"), env=dict(HOME=home, **OFFLINE))
    assert resumed.returncode == 0, resumed.stderr
    stage2 = run_cli(*common, "--epochs", "5", "--load-epoch", "4", "--lr", "0.05", "--output-dir",
                     str(tmp_path / "run3"), env=dict(HOME=home, **OFFLINE))
    assert stage2.returncode == 0, stage2.stderr

    archives = [archive_of(str(tmp_path / run)) for run in ("run1", "run2", "run3")]
    assert len({experiment["offline_id"] for experiment, _ in archives}) == 1  # one experiment key
    assert [experiment["resume_strategy"] for experiment, _ in archives] == ["create", "get", "get"]
    key = archives[0][0]["offline_id"]
    assert ("resuming from checkpoint %s-%04d: %d of 4 epochs done, the next JSON line is epoch %d; "
            "continuing Comet experiment %s" % (prefix, stopped, stopped, stopped, key)) in resumed.stderr
    assert json.load(open(prefix + "-0005.json"))["comet_experiment"] == key
    logged = sorted(sum((epoch_metrics(messages) for _, messages in archives), []))
    assert [epoch for epoch, _ in logged] == [0, 1, 2, 3, 4]  # every epoch exactly once
    assert [step for _, step in logged] == [4, 8, 12, 16, 20]  # steps continue: 4 updates an epoch
    first, second, third = (others(messages) for _, messages in archives)
    assert first["Name"].startswith("spec-resnet_c0-1") and "Name" not in second  # named once
    assert second["resume_1_from_epoch"] == stopped and second["resume_1_changed"] == "nothing"
    assert third["resume_2_from_epoch"] == 4 and third["resume_2_changed"] == "epochs 4 -> 5; lr 0.1 -> 0.05"
    assert "resumed" in archives[2][0]["tags"] and "resumed" not in archives[0][0]["tags"]


def comet_run(tmp_path, monkeypatch, project=None, env=None, config_file=None, resume=None):
    """A CometRun opened as a run opens it, under these Comet settings; (run or None, stderr)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("COMET_API_KEY", "COMET_PROJECT_NAME", "COMET_START_ONLINE", "COMET_AUTO_LOG_DISABLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    if config_file:
        (tmp_path / ".comet.config").write_text(config_file)
    from training.comet import CometRun, Plan

    return CometRun.open(Plan("name", project, None, str(tmp_path / "comet"), {"lr": 0.1}, ["t"], resume=resume))


def test_a_resume_whose_experiment_cannot_be_reached_continues_it_in_an_offline_archive(tmp_path, monkeypatch, capfd):
    key = "0123456789abcdef0123456789abcdef"
    run = comet_run(tmp_path, monkeypatch, env={"COMET_API_KEY": "some-key-0123456789abcdef",
                                                "COMET_URL_OVERRIDE": "http://127.0.0.1:9/clientlib/"},
                    resume={"experiment_key": key, "number": 1, "from_epoch": 2, "changed": "nothing"})
    assert not run.online and run.experiment_key == key
    run.call("log_metrics", {"test_acc": 0.5}, step=12, epoch=2)
    archives = run.end()
    with zipfile.ZipFile(archives[0]) as z:
        experiment = json.loads(z.read("experiment.json"))
    assert len(archives) == 1 and (experiment["offline_id"], experiment["resume_strategy"]) == (key, "get")
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no experiment %s to continue" % key in warnings[0]


@pytest.mark.parametrize("flag, env, config_file, expected", [
    (None, {}, None, "cifar10-gluon"),                                   # this project's default
    (None, {"COMET_PROJECT_NAME": "from-env"}, None, "from-env"),        # the user's variable
    (None, {}, "[comet]\nproject_name = from-file\n", "from-file"),               # the user's config file
    ("from-flag", {"COMET_PROJECT_NAME": "from-env"}, None, "from-flag"),  # the flag wins
])
def test_the_project_is_the_flag_else_the_users_comet_settings_else_ours(tmp_path, monkeypatch, capfd,
                                                                          flag, env, config_file, expected):
    run = comet_run(tmp_path, monkeypatch, flag, env, config_file)
    run.end()
    archive = [f for f in os.listdir(tmp_path / "comet") if f.endswith(".zip")]
    with zipfile.ZipFile(tmp_path / "comet" / archive[0]) as z:
        assert json.loads(z.read("experiment.json"))["project_name"] == expected
    assert run.project == expected and "warning" not in capfd.readouterr().err


def test_comet_mls_offline_switch_gives_an_archive_without_a_warning(tmp_path, monkeypatch, capfd):
    # A key is present, but COMET_START_ONLINE=false asks for offline: no connection is tried.
    run = comet_run(tmp_path, monkeypatch, env={"COMET_API_KEY": "some-key-0123456789abcdef",
                                                "COMET_START_ONLINE": "false"})
    assert not run.online
    run.call("log_metrics", {"test_acc": 0.5}, step=1, epoch=0)
    assert len(run.end()) == 1 and capfd.readouterr().err == ""


@pytest.mark.parametrize("env, config_file", [({"COMET_AUTO_LOG_DISABLE": "true"}, None),
                                              ({}, "[comet_auto_log]\ndisable = true\n")])
def test_comet_mls_disabled_switch_turns_comet_off_and_is_not_called_a_bad_key(tmp_path, monkeypatch, capfd,
                                                                              env, config_file):
    run = comet_run(tmp_path, monkeypatch, env=dict(env, COMET_API_KEY="some-key-0123456789abcdef"),
                    config_file=config_file)
    assert run is None and not (tmp_path / "comet").exists()
    err = capfd.readouterr().err
    assert err.startswith("Comet: disabled by your Comet settings") and "API key" not in err


def test_export_is_not_logged_as_a_model_with_no_comet_model(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "1", "--quiet", "--output-dir",
                     run_dir, "--export", str(tmp_path / "ex"), "--no-comet-model",
                     env=dict(HOME=str(tmp_path), **OFFLINE))
    assert result.returncode == 0, result.stderr
    _, messages = archive_of(run_dir)
    uploads = [m["payload"]["additional_params"] for m in messages if m["type"] == "file_upload"]
    assert uploads and not any(u.get("type") == "model-element" for u in uploads)
    assert (tmp_path / "ex.onnx").is_file()


def test_no_comet_model_without_an_export_is_a_usage_error(tmp_path, usage, monkeypatch):
    for key, value in dict(HOME=str(tmp_path), **OFFLINE).items():
        monkeypatch.setenv(key, value)
    assert "--no-comet-model would have no effect: only an export (--export PATH) is logged" in usage("--no-comet-model")


# ----------------------------------------------------------------------------------------------
# Seed groups

@pytest.fixture(scope="module")
def seed_group(data_dir, tmp_path_factory):
    """--seeds 1,2 of a 2-epoch run, and a run of seed 1 typed by hand, in one folder."""
    folder = tmp_path_factory.mktemp("seeds")
    env = dict(HOME=str(folder), **OFFLINE)
    common = ["--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--quiet"]
    talking = [arg for arg in common if arg != "--quiet"]  # the group says what it runs
    group = run_cli(*talking, "--seeds", "1,2", "--run-group", "g", "--model-prefix", str(folder / "ck"),
                            cwd=str(folder), env=env)
    assert group.returncode == 0, group.stderr
    assert "seed group g: 2 runs; compare them with: python -m tools.compare_runs runs/g-seed*" in group.stderr
    by_hand = run_cli(*common, "--seed", "1", "--output-dir", str(folder / "by-hand"), cwd=str(folder), env=env)
    assert by_hand.returncode == 0, by_hand.stderr
    return folder, group, by_hand


def test_seeds_run_in_turn_each_its_own_run_and_experiment_in_one_group(seed_group):
    folder, group, by_hand = seed_group
    lines = without_timing(json_lines(group))
    assert len(lines) == 4  # two epochs of each seed
    assert lines[:2] == without_timing(json_lines(by_hand))  # as if typed by hand
    assert lines[2:] != lines[:2]
    keys = set()
    for seed in (1, 2):
        run_dir = str(folder / "runs" / ("g-seed%d" % seed))
        config = json.load(open(os.path.join(run_dir, "config.json")))
        assert (config["seed"], config["run_group"], config["run_name"]) == (seed, "g", "g-seed%d" % seed)
        experiment, messages = archive_of(run_dir)
        assert "group-g" in experiment["tags"]
        keys.add(experiment["offline_id"])
        assert os.path.isfile(str(folder / ("ck-seed%d-0002.json" % seed)))
    assert len(keys) == 2


def test_compare_runs_groups_runs_that_differ_only_in_seed_and_name(seed_group, data_dir, tmp_path):
    folder, _, _ = seed_group
    other = str(tmp_path / "other")  # another configuration: its own group of one
    assert run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--lr", "0.05", "--quiet",
                   "--output-dir", other, "--no-comet").returncode == 0
    runs = [str(folder / "runs" / "g-seed1"), str(folder / "runs" / "g-seed2"), str(folder / "by-hand"), other]
    result = run_command("tools/compare_runs.py", *runs, "--plot", tmp_path / "runs.png",
                         "--group-plot", tmp_path / "groups.png")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.findall(r"^group \S+: \d+ runs, seeds \S+$", out, re.M) == ["group g: 3 runs, seeds 1,2,1"]  # the other run: alone
    finals = [json.loads(open(os.path.join(r, "metrics.jsonl")).read().splitlines()[-1])["test_acc"] for r in runs[:3]]
    row = re.search(r"\n  test_acc +(\S+) +(\S+) +(\S+)", out)
    mean = sum(finals) / 3
    std = (sum((f - mean) ** 2 for f in finals) / 2) ** 0.5
    assert [float(v) for v in row.groups()] == pytest.approx([mean, std, min(finals)], abs=1e-4)
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"
