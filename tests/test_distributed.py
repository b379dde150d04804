"""Several worker processes on MXNet's parameter server, started by launch.py on 127.0.0.1.

Every job here is bounded twice: launch.py's --timeout stops its processes, and the test's own
subprocess timeout stops launch.py.
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from commands import launch
from training import distributed
from helpers import REPO, load_params as load_copy, running

WORKER = os.path.join(REPO, "tests", "dist_worker.py")
JOB_TIMEOUT = 150  # s, for launch.py; the test waits a little longer


def run_launch(*args, cwd=None):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, os.path.join(REPO, "launch.py"), "--timeout",
                           str(JOB_TIMEOUT)] + list(args),
                          capture_output=True, text=True, timeout=JOB_TIMEOUT + 30, cwd=cwd,
                          env=dict(os.environ, COMET_DISABLE="1", PYTHONPATH=REPO))
    proc.seconds = time.monotonic() - started
    return proc


def test_two_dist_sync_workers_train_to_identical_parameters(tmp_path):
    proc = run_launch("-n", "2", "-s", "1", "--", sys.executable, WORKER, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    copies = [load_copy(str(tmp_path / ("rank-%d.params" % r))) for r in (0, 1)]
    assert copies[0].keys() == copies[1].keys()
    for name in copies[0]:
        np.testing.assert_array_equal(copies[0][name], copies[1][name], err_msg=name)
    records = [json.load(open(tmp_path / ("rank-%d.json" % r))) for r in (0, 1)]
    assert sorted(r["rank"] for r in records) == [0, 1]
    for r in records:
        assert r["num_workers"] == 2 and r["shard"] == 32  # half of the 64 images each
        assert r["num_update"] == 8  # 2 epochs x 4 steps of 8 images: the schedule's count
        assert r["history"][-1]["train_loss"] < r["history"][0]["train_loss"]


def test_a_worker_that_dies_stops_the_whole_job(tmp_path):
    proc = run_launch("-n", "2", "-s", "1", "--", sys.executable, WORKER, str(tmp_path),
                      "--die-at-step", "3")
    assert proc.returncode == 3
    # The launcher numbers processes by start order; MXNet gives ranks by connection order.
    assert re.search(r"worker [01] exited with code 3; stopped the other processes", proc.stderr)
    assert proc.seconds < JOB_TIMEOUT / 2  # stopped by the watch, not by the timeout
    assert not glob.glob(str(tmp_path / "rank-*.params"))
    assert running(str(tmp_path)) == []


def test_the_timeout_stops_a_job_that_hangs(tmp_path):
    marker = str(tmp_path)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "launch.py"), "-n", "2", "--timeout",
                           "3", "--", sys.executable, "-c", "import time; time.sleep(600)", marker],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 124 and "--timeout 3 s" in proc.stderr
    assert running(marker) == []


def test_train_cifar10_under_launch_rank_0_writes_everything(tmp_path, data_dir):
    proc = run_launch("-n", "2", "-s", "1", "--", sys.executable, os.path.join(REPO, "train_cifar10.py"),
                      "--kv-store", "dist_sync", "--data-dir", data_dir, "--classes", "0,1",
                      "--epochs", "2", "--batch-size", "16", "--model-prefix", "ckpt/m",
                      "--output-dir", "run", "--quiet", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["epoch"] for r in lines] == [0, 1]  # one report per epoch: rank 0's
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "run"]  # no run-2 folder of a second writer
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["num_workers"] == 2 and config["global_batch_size"] == 32
    assert config["train_images"] == 200  # the shard: 400 images of classes 0 and 1, halved
    record = json.load(open(tmp_path / "ckpt" / "m-0002.json"))
    assert record["num_update"] == 2 * 13  # ceil(200 / 16) updates per epoch in every worker


def test_fast94_under_launch_averages_the_workers_batches_and_ends_within_an_epoch(tmp_path, data_dir):
    proc = run_launch("-n", "2", "-s", "1", "--", sys.executable, os.path.join(REPO, "train_cifar10.py"),
                      "--kv-store", "dist_sync", "--recipe", "fast94", "--data-dir", data_dir,
                      "--classes", "0,1,2", "--epochs", "1.5", "--batch-size", "32", "--model-prefix", "ckpt/m",
                      "--output-dir", "run", "--quiet", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["epoch"] for r in lines] == [0, 1] and "tta_test_acc" in lines[1]
    record = json.load(open(tmp_path / "ckpt" / "m-0002.json"))
    assert record["config"]["global_batch_size"] == 64 and record["config"]["train_images"] == 300
    assert record["num_update"] == 14  # ceil(9 whole batches of 32 in a shard of 300 x 1.5)


def test_dist_async_workers_finish(tmp_path):
    proc = run_launch("-n", "2", "-s", "1", "--", sys.executable, WORKER, str(tmp_path),
                      "--kv-store", "dist_async")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for r in (0, 1):
        history = json.load(open(tmp_path / ("rank-%d.json" % r)))["history"]
        assert all(np.isfinite(h["train_loss"]) for h in history)


@pytest.mark.parametrize("flags, message", [
    (["--kv-store", "dist_sync"], "launch.py"),
    (["--kv-store", "nccl"], "needs --num-gpus 1 or more"),
    (["--kv-store", "dist_async", "--model-prefix", "m"], "checkpoints (--model-prefix) need dist_sync"),
])
def test_kvstore_usage_errors(flags, message, data_dir, usage):
    assert message in usage("--data-dir", data_dir, *flags)


def test_shards_are_equal_disjoint_and_fixed():
    shards = [distributed.shard_indices(103, r, 4) for r in range(4)]
    assert [len(s) for s in shards] == [25] * 4
    assert len(set(np.concatenate(shards))) == 100
    np.testing.assert_array_equal(shards[2], distributed.shard_indices(103, 2, 4))


def test_the_plan_gives_every_process_its_role_and_the_scheduler_address():
    args = launch.parse_args(["-n", "3", "-s", "2", "--port", "9000", "--", "python", "x.py"])
    local = launch.plan(args)
    assert [name for name, _, _ in local] == ["scheduler", "server 0", "server 1", "worker 0",
                                              "worker 1", "worker 2"]
    for name, host, env in local:
        assert host is None and env["DMLC_PS_ROOT_URI"] == "127.0.0.1" == env["DMLC_NODE_HOST"]
        assert (env["DMLC_PS_ROOT_PORT"], env["DMLC_NUM_SERVER"], env["DMLC_NUM_WORKER"]) == ("9000", "2", "3")
        assert env["DMLC_ROLE"] == name.split()[0]
    args = launch.parse_args(["-n", "3", "--scheduler-host", "10.0.0.1", "--port", "9000", "--",
                              "python", "x.py"])
    remote = launch.plan(args, hosts=["a", "b"])
    assert [(n, h) for n, h, _ in remote][1:] == [("server 0", "a"), ("server 1", "b"), ("server 2", "a"),
                                                  ("worker 0", "a"), ("worker 1", "b"), ("worker 2", "a")]
    assert all(env["DMLC_PS_ROOT_URI"] == "10.0.0.1" for _, _, env in remote)
    assert [env["DMLC_NODE_HOST"] for _, _, env in remote][1:] == ["a", "b", "a", "a", "b", "a"]
