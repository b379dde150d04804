"""Several worker processes on Horovod (--kv-store horovod), started by horovodrun on 127.0.0.1
with Gloo. Horovod is optional: these tests run where it is built (CIFAR_HOROVOD=1 ./test.sh,
which .ci/run uses) and are skipped elsewhere, except the one line that says how to get it."""
import glob
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO, digest, json_lines, load_params as load_copy, run_cli_process, running, without_timing

WORKER = os.path.join(REPO, "tests", "dist_worker.py")
HOROVODRUN = os.path.join(os.path.dirname(sys.executable), "horovodrun")
JOB_TIMEOUT = 240  # s, for a whole horovodrun job

# Not imported here: its library loaded into this process broke PIL's JPEG writer for the tests
# after it. The job's processes import it.
HOROVOD = importlib.util.find_spec("horovod") is not None and os.path.isfile(HOROVODRUN)
needs_horovod = pytest.mark.skipif(not HOROVOD, reason="Horovod is not built here (CIFAR_HOROVOD=1 ./test.sh)")


def horovodrun(*command, cwd=None, ranks=2, threads=None, hosts=None):
    """Runs command in `ranks` processes on 127.0.0.1 under horovodrun (Gloo), with
    OMP_NUM_THREADS=threads (None: unset, as in a shell, not this process's own setting); hosts:
    a host file to name the host by instead of -H."""
    started = time.monotonic()
    env = dict(os.environ, COMET_DISABLE="1", PYTHONPATH=REPO)
    env.pop("OMP_NUM_THREADS", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    where = ["-hostfile", hosts] if hosts else ["-H", "127.0.0.1:%d" % ranks]
    proc = subprocess.run([HOROVODRUN, "-np", str(ranks), *where, "--gloo"] + list(command), capture_output=True, text=True, timeout=JOB_TIMEOUT, cwd=cwd,
                          env=env)
    proc.seconds = time.monotonic() - started
    return proc


@needs_horovod
def test_two_ranks_train_to_identical_parameters_equal_to_one_process_on_the_joint_batch(tmp_path):
    # One thread everywhere: the same kernels and summation order in the ranks and the reference.
    proc = horovodrun(sys.executable, WORKER, str(tmp_path), "--kv-store", "horovod", threads=1)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    joint = subprocess.run([sys.executable, WORKER, str(tmp_path), "--joint", "2"], capture_output=True,
                           text=True, timeout=300, cwd=REPO,
                           env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1"))
    assert joint.returncode == 0, joint.stderr[-3000:]
    copies = [load_copy(str(tmp_path / ("rank-%d.params" % r))) for r in (0, 1)]
    reference = load_copy(str(tmp_path / "joint.params"))
    assert copies[0].keys() == copies[1].keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(copies[0][name], copies[1][name], err_msg=name)
        np.testing.assert_allclose(copies[0][name], reference[name], rtol=0, atol=1e-5, err_msg=name)
    moved = [name for name in reference if name.endswith("weight")]
    records = [json.load(open(tmp_path / ("rank-%d.json" % r))) for r in (0, 1)]
    assert sorted(r["rank"] for r in records) == [0, 1] and moved
    for r in records:
        assert r["num_workers"] == 2 and r["shard"] == 32  # half of the 64 images each
        assert r["num_update"] == 8  # 2 epochs x 4 steps of 8 images: the schedule's count
        assert r["history"][-1]["train_loss"] < r["history"][0]["train_loss"]


@needs_horovod
@pytest.mark.parametrize("how", [[], ["--killed"]], ids=["crashed", "SIGKILL"])
def test_a_rank_that_dies_stops_the_whole_job(tmp_path, how):
    proc = horovodrun(sys.executable, WORKER, str(tmp_path), "--kv-store", "horovod", "--die-at-step", "3", *how)
    assert proc.returncode != 0
    assert proc.seconds < 60, proc.seconds  # well within a minute, not by the test's timeout
    assert not glob.glob(str(tmp_path / "rank-*.params"))
    time.sleep(1)
    assert running(str(tmp_path)) == []


@pytest.fixture(scope="module")
def horovod_run(data_dir, tmp_path_factory):
    """train_cifar10.py as 2 ranks, 2 epochs, a checkpoint after each."""
    folder = tmp_path_factory.mktemp("hvd")
    proc = horovodrun(sys.executable, os.path.join(REPO, "train_cifar10.py"), "--kv-store", "horovod",
                      "--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--batch-size", "16",
                      "--model-prefix", "ckpt/m", "--output-dir", "run", "--quiet", cwd=str(folder))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return folder, proc


@needs_horovod
def test_train_cifar10_on_horovod_rank_0_alone_reports_and_writes(horovod_run):
    folder, proc = horovod_run
    records = json_lines(proc.stdout, with_prefix=True)
    assert [r["epoch"] for _, r in records] == [0, 1]  # one report per epoch: rank 0's
    assert all("[0]" in prefix for prefix, _ in records)
    assert sorted(os.listdir(folder)) == ["ckpt", "run"]  # no second writer's folder
    config = json.load(open(folder / "run" / "config.json"))
    assert config["kv_store"] == "horovod" and config["num_workers"] == 2
    assert config["global_batch_size"] == 32 and config["train_images"] == 200  # the shard
    # The machine's cores shared by its ranks (horovodrun sets HOROVOD_LOCAL_SIZE)
    assert config["omp_num_threads"] == str(max(len(os.sched_getaffinity(0)) // 2, 1))
    record = json.load(open(folder / "ckpt" / "m-0002.json"))
    assert record["num_update"] == 2 * 13  # ceil(200 / 16) updates per epoch in every rank


@needs_horovod
def test_a_horovod_job_resumes_from_its_checkpoint_as_if_never_stopped(horovod_run, data_dir, tmp_path):
    folder, proc = horovod_run
    os.makedirs(tmp_path / "ckpt")
    for ext in ("params", "states", "json"):
        os.link(folder / "ckpt" / ("m-0001.%s" % ext), tmp_path / "ckpt" / ("m-0001.%s" % ext))
    (tmp_path / "hosts").write_text("127.0.0.1 slots=2\n")  # launched with a host file this time
    resumed = horovodrun(sys.executable, os.path.join(REPO, "train_cifar10.py"), "--kv-store", "horovod",
                         "--data-dir", data_dir, "--classes", "0,1", "--epochs", "2", "--batch-size", "16",
                         "--model-prefix", "ckpt/m", "--load-epoch", "1", "--output-dir", "run", "--quiet",
                         cwd=str(tmp_path), hosts=str(tmp_path / "hosts"))
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-3000:]
    assert without_timing(json_lines(resumed.stdout)) == without_timing(json_lines(proc.stdout))[1:]
    for ext in ("params", "states"):
        assert digest(tmp_path / "ckpt" / ("m-0002.%s" % ext)) == digest(folder / "ckpt" / ("m-0002.%s" % ext))


@pytest.mark.parametrize("flags, message", [
    (["--kv-store", "horovod", "--num-gpus", "2"], "one GPU per process"),
    (["--kv-store", "horovod", "--gpus", "0,1"], "one GPU per process"),
    (["--kv-store", "horovod", "--seeds", "1,2"], "launch one job per --seed"),
])
def test_horovod_usage_errors(flags, message, data_dir, usage):
    assert message in usage("--data-dir", data_dir, "--classes", "0,1", *flags)


def test_horovod_missing_is_one_line_saying_how_to_get_it(data_dir, tmp_path):
    # Where Horovod is built, a package first on the path that fails as a missing one does
    # stands in for an environment without it.
    (tmp_path / "horovod").mkdir()
    (tmp_path / "horovod" / "__init__.py").write_text("raise ImportError('No module named horovod')\n")
    result = run_cli_process("--data-dir", data_dir, "--classes", "0,1", "--kv-store", "horovod",
                             env={"PYTHONPATH": os.pathsep.join([str(tmp_path), REPO])})
    assert result.returncode == 2 and "CIFAR_HOROVOD=1 ./train.sh" in result.stderr
    assert "Traceback" not in result.stderr
