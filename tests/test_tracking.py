"""Every run's record: stdout, its own folder, and Comet (offline archive, bogus key, disabled)."""
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO, archive_messages, experiment_json, run_cli, run_command
from training import metrics, tracking

EPOCH_METRICS = [m.name for m in metrics.METRICS if m.logged and not m.last_epoch_only]  # each epoch's
SECRET = "bogus-key-0123456789abcdef"  # must appear nowhere


def files_below(folder):
    for root, _, names in os.walk(folder):
        for name in names:
            yield os.path.join(root, name)


@pytest.fixture(scope="module")
def offline_run(data_dir, tmp_path_factory):
    """A short real training whose Comet experiment is offline (no API key anywhere)."""
    run_dir = str(tmp_path_factory.mktemp("offline") / "run")
    home = str(tmp_path_factory.mktemp("home"))  # no ~/.comet.config of the user
    result = run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--output-dir", run_dir,
                     "--run-name", "offline-test", "--quiet", "--export", run_dir + "-export/spec",
                     env={"COMET_DISABLE": "", "COMET_API_KEY": "", "HOME": home})
    assert result.returncode == 0, result.stderr
    return run_dir, result


def test_offline_archive_holds_params_and_each_metric_of_each_epoch_as_printed(offline_run):
    run_dir, result = offline_run
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["epoch"] for p in printed] == [0, 1]
    archive, messages = archive_messages(run_dir)
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
              for m in messages if m["type"] == "parameter_msg" and m["payload"]["param"]["source"] == "manual"}
    assert params["lr"] == 0.1 and params["batch_size"] == 128 and params["epochs"] == 2
    assert params["seed"] == 42 and params["momentum"] == 0.9 and params["classes"] == "0,1"
    assert params["num_devices"] == 1 and params["kv_store"] == "device" and params["model"] == "spec-resnet"
    assert params["precision"] == "float32" and params["amp"] is False
    assert params["comet_project"] == "cifar10-gluon"  # no flag, variable or config file said otherwise
    assert params["version_mxnet"] == "1.9.1" and params["version_numpy"] == "1.23.5"
    metrics = [m["payload"]["metric"] for m in messages if m["type"] == "metric_msg"
               and m["payload"]["metric"]["metricName"] in EPOCH_METRICS]
    for line in printed:
        logged = {m["metricName"]: m["metricValue"] for m in metrics if m["epoch"] == line["epoch"]}
        assert logged == {k: line[k] for k in EPOCH_METRICS}
    steps = sorted({m["step"] for m in metrics})
    assert steps == [4, 8]  # updates done: 400 images / 128 per batch = 4 per epoch
    uploads = [m["payload"]["additional_params"] for m in messages if m["type"] == "file_upload"]
    assert [u["type"] for u in uploads if "type" in u].count("confusion-matrix") == 1
    assert sorted(u["figName"] for u in uploads if "figName" in u) == ["confusion_matrix.png", "curves.png"]
    models = [u for u in uploads if u.get("type") == "model-element"]  # the export, as a Comet model
    assert sorted(m["fileName"] for m in models) == ["spec-0000.params", "spec-meta.json", "spec-symbol.json", "spec.onnx"]
    assert {m["groupingName"] for m in models} == {"spec-resnet"}
    assert any(m["type"] == "graph" and "SpecResNet" in m["payload"]["graph"] for m in messages)
    assert "comet upload %s" % archive in result.stderr
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["Name"] == "offline-test"
    assert others["final_test_acc"] == printed[-1]["test_acc"] and others["final_lr"] == printed[-1]["lr"]
    # The test accuracy both ways (test_population.py): the spec's batch statistics, as printed,
    # and the population statistics the export normalises with.
    status = json.load(open(os.path.join(run_dir, "status.json")))
    assert others["final_test_acc_batch_statistics"] == printed[-1]["test_acc"]
    assert others["final_test_acc_population_statistics"] == status["test_acc_population_statistics"]
    with zipfile.ZipFile(archive) as z:
        tags = json.loads(z.read("experiment.json"))["tags"]
    assert sorted(tags) == sorted(["spec-resnet", "cifar10", "classes-0-1", "cpu", "devices-1", "float32"])


# What comet_ml would collect by itself: system metrics yes; code, git, console, host, command
# line and environment no. These are all the message types a run may send.
ALLOWED_MESSAGES = {"parameter_msg", "metric_msg", "log_other", "file_upload", "graph",
                    "installed_packages", "os_packages"}


def test_system_metrics_are_logged_and_nothing_of_the_environment(offline_run):
    run_dir, _ = offline_run
    _, messages = archive_messages(run_dir)
    assert {m["type"] for m in messages} <= ALLOWED_MESSAGES
    names = {m["payload"]["metric"]["metricName"] for m in messages if m["type"] == "metric_msg"}
    assert {"sys.cpu.percent.avg", "sys.ram.used", "sys.ram.total"} <= names
    automatic = {m["payload"]["param"]["paramName"] for m in messages if m["type"] == "parameter_msg"
                 and m["payload"]["param"]["source"] != "manual"}
    assert not automatic & {"argv", "args", "data_dir"}  # no command line parsed by comet_ml


def png_size(path):
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_the_run_folder_holds_config_metrics_and_confusion_matrix(offline_run):
    run_dir, result = offline_run
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        assert f.read() == result.stdout
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["run_name"] == "offline-test" and config["class_names"] == ["airplane", "automobile"]
    assert config["train_images"] == 400 and config["test_images"] == 80 and config["contexts"] == ["cpu(0)"]
    confusion = json.load(open(os.path.join(run_dir, "confusion_matrix.json")))
    assert confusion["labels"] == ["airplane", "automobile"]
    assert sum(map(sum, confusion["matrix"])) == 80
    correct = confusion["matrix"][0][0] + confusion["matrix"][1][1]
    assert correct / 80 == pytest.approx(json.loads(result.stdout.splitlines()[-1])["test_acc"])
    # the pictures, drawn at the end: the curves of every epoch, the confusion matrix
    width, height = png_size(os.path.join(run_dir, "curves.png"))
    assert width > 1000 and height > 300
    assert min(png_size(os.path.join(run_dir, "confusion_matrix.png"))) > 300


@pytest.mark.parametrize("how", ["flag", "env"])
def test_without_comet_no_archive_and_comet_ml_is_never_imported(data_dir, tmp_path, how):
    run_dir = tmp_path / "run"
    args = ["--data-dir", data_dir, "--classes", "0,1", "--epochs", "1", "--output-dir", str(run_dir), "--quiet"]
    if how == "flag":
        args.append("--no-comet")
    code = ("import sys; sys.path.insert(0, %r); from common import runtime; rc = runtime.start('commands.train', %r); "
            "print('IMPORTED' if 'comet_ml' in sys.modules else 'CLEAN'); sys.exit(rc)" % (REPO, args))
    env = dict(os.environ, COMET_API_KEY="", COMET_DISABLE="1" if how == "env" else "")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "CLEAN"
    assert not (run_dir / "comet").exists() and (run_dir / "metrics.jsonl").is_file()


CANARY = "canary-value-of-an-environment-variable"  # must appear nowhere either


@pytest.mark.parametrize("where", ["environment", "config file"])
def test_a_bogus_key_without_network_still_trains_promptly_and_keeps_an_archive(data_dir, tmp_path, where):
    run_dir = str(tmp_path / "run")
    # The key is refused wherever Comet is; its server is pointed at a closed local port so the
    # test does not depend on how this machine fails to reach the internet.
    env = {"COMET_DISABLE": "", "HOME": str(tmp_path), "COMET_URL_OVERRIDE": "http://127.0.0.1:9/clientlib/",
           "SOME_SETTING": CANARY}
    if where == "environment":
        env["COMET_API_KEY"] = SECRET
    else:  # comet_ml's ~/.comet.config
        (tmp_path / ".comet.config").write_text("[comet]\napi_key = %s\n" % SECRET)
    environment = {k: v for k, v in os.environ.items() if k != "COMET_API_KEY"}
    environment.update(env)
    result = subprocess.run([sys.executable, os.path.join(REPO, "train_cifar10.py"), "--data-dir", data_dir,
                             "--classes", "0,1", "--epochs", "2", "--output-dir", run_dir],
                            capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=environment)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "offline Comet archive" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr
    archive, messages = archive_messages(run_dir)
    assert sum(m["type"] == "metric_msg" and m["payload"]["metric"]["metricName"] == "test_acc"
               for m in messages) == 2
    assert SECRET not in result.stdout + result.stderr
    names = {m["payload"]["metric"]["metricName"] for m in messages if m["type"] == "metric_msg"}
    assert "sys.cpu.percent.avg" in names and {m["type"] for m in messages} <= ALLOWED_MESSAGES
    for path in files_below(run_dir):
        with open(path, "rb") as f:
            content = f.read()
        for secret in (SECRET, CANARY):
            assert secret.encode() not in content, path
            if path.endswith(".zip"):
                with zipfile.ZipFile(path) as z:
                    assert all(secret.encode() not in z.read(n) for n in z.namelist())


def test_compare_runs_prints_a_table_and_draws_one_png(offline_run, data_dir, tmp_path):
    first, _ = offline_run
    second = str(tmp_path / "second")
    assert run_cli("--data-dir", data_dir, "--classes", "0,1", "--epochs", "3", "--output-dir", second,
                   "--run-name", "second-test", "--quiet").returncode == 0
    png = tmp_path / "cmp.png"
    result = run_command("tools/compare_runs.py", first, second, "--plot", png)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["run", "epochs", "train_loss", "train_acc", "test_acc", "best_test_acc", "time"]
    assert rows[1].split()[:2] == ["offline-test", "2"] and rows[2].split()[:2] == ["second-test", "3"]
    assert rows[3] == "plot: %s" % png and len(rows) == 4  # different configurations: no group
    width, height = png_size(str(png))
    assert width > 500 and height > 200


def test_compare_runs_rejects_a_folder_that_is_not_a_run(tmp_path):
    result = run_command("tools/compare_runs.py", tmp_path)
    assert result.returncode == 1 and "is not a run folder" in result.stderr and "Traceback" not in result.stderr


def test_a_comet_call_failing_mid_run_switches_to_an_offline_archive_that_replays_the_run(tmp_path, monkeypatch):
    # An online experiment cannot be made here (no Comet server): a real offline one marked as
    # online takes its place, which is the branch a failing online call goes through.
    monkeypatch.setenv("COMET_API_KEY", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    from training.comet import CometRun, Plan

    run = CometRun.open(Plan("mid-run", "p", None, str(tmp_path / "comet"), {"lr": 0.1}, ["t"]))
    run.online = True
    run.call("log_metrics", {"test_acc": 0.5}, step=1, epoch=0)
    first = run.experiment
    run.call("no_such_method")  # raises inside the experiment
    assert run.experiment is not first and not run.online
    run.call("log_metrics", {"test_acc": 0.75}, step=2, epoch=1)
    archives = run.end()  # the stand-in's own archive, and the fallback's

    def test_accs(archive):
        with zipfile.ZipFile(archive) as z:
            messages = [json.loads(line) for line in z.read("messages.json").decode().splitlines()]
        return [m["payload"]["metric"]["metricValue"] for m in messages
                if m["type"] == "metric_msg" and m["payload"]["metric"]["metricName"] == "test_acc"]

    # The fallback archive holds the whole run: the epoch before the failure was replayed into it,
    # and it continues the same experiment, whose key the checkpoints keep.
    assert sorted(map(test_accs, archives)) == [[0.5], [0.5, 0.75]]
    assert {experiment_json(a)["offline_id"] for a in archives} == {run.experiment_key}


def test_a_diverging_run_stops_saves_nothing_broken_and_says_so_everywhere(data_dir, tmp_path):
    # Two good epochs, then a second stage at --lr 1000, whose first epoch ends with a NaN loss.
    run_dir, prefix = str(tmp_path / "run"), str(tmp_path / "ckpt" / "m")
    common = ["--data-dir", data_dir, "--classes", "0,1", "--model-prefix", prefix, "--quiet"]
    assert run_cli(*common, "--epochs", "2").returncode == 0
    result = run_cli(*common, "--epochs", "4", "--load-epoch", "2", "--lr", "1000", "--save-period", "2",
                     "--export", str(tmp_path / "export"), "--output-dir", run_dir,
                     env={"COMET_DISABLE": "", "COMET_API_KEY": "", "HOME": str(tmp_path)})
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""  # nothing of the broken epoch
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "the training loss became nan in epoch 2 (--lr 1000)" in errors[0]
    assert "learning rate is too high" in errors[0]
    assert "m-0002: resume with the same command and --resume (--load-epoch 2) and a lower --lr" in errors[0]
    # The first stage's files as it left them: its last checkpoint with its population statistics.
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["m-0001.json", "m-0001.params", "m-0001.states",
                                                    "m-0002.bnstats", "m-0002.json", "m-0002.params",
                                                    "m-0002.states"]
    assert not any(name.startswith("export") for name in os.listdir(tmp_path))
    status = json.load(open(os.path.join(run_dir, "status.json")))
    assert status["status"] == "failed" and "became nan in epoch 2" in status["reason"]
    assert status["epochs_logged"] == 0
    assert not os.path.exists(os.path.join(run_dir, "confusion_matrix.json"))
    archive, messages = archive_messages(run_dir)
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["status"] == "failed" and "became nan" in others["failure"]
    assert not any(m["type"] == "metric_msg" and m["payload"]["metric"]["metricName"] == "test_acc"
                   for m in messages)
    with zipfile.ZipFile(archive) as z:
        assert "failed" in json.loads(z.read("experiment.json"))["tags"]
    # The last good checkpoint is the latest, and resumes with a sane rate to the end.
    resumed = run_cli(*common, "--epochs", "4", "--load-epoch", "2", "--lr", "0.05")
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert [r["epoch"] for r in lines] == [2, 3] and all(r["train_loss"] < 1 for r in lines)


def test_a_finished_run_says_so_in_its_folder_and_on_comet(offline_run):
    run_dir, _ = offline_run
    assert json.load(open(os.path.join(run_dir, "status.json")))["status"] == "finished"
    _, messages = archive_messages(run_dir)
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["status"] == "finished"


def test_curves_are_redrawn_once_curves_every_seconds_have_passed_and_at_the_end(tmp_path, monkeypatch):
    log = tracking.RunLog(str(tmp_path), {"run_name": "curves"}, stream=io.StringIO())
    curves = tmp_path / "curves.png"

    def record(epoch):
        return {"epoch": epoch, "train_loss": 1.0 / (epoch + 1), "train_acc": 0.5, "test_acc": 0.5,
                "lr": 0.1, "time": 1.0, "images_per_sec": 1.0, "epoch_time": 1.0}

    log.log_epoch(record(0), step=10)  # the run has just started: no drawing yet
    assert not curves.exists()
    monkeypatch.setattr(tracking, "CURVES_EVERY", 0)
    log.log_epoch(record(1), step=20)
    drawn = curves.read_bytes()
    monkeypatch.setattr(tracking, "CURVES_EVERY", 3600)
    log.log_epoch(record(2), step=30)  # drawn a moment ago
    assert curves.read_bytes() == drawn
    log.close("interrupted")  # the end draws every epoch, however the run ends
    assert curves.read_bytes() != drawn and len(log.history) == log.curves_drawn == 3
