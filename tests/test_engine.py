"""MXNet's execution engine (common/engine.py): which one a process chooses, that the choice is the
process's own (its children and its stderr never see it), and that it changes no number a run
computes."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from common import engine
from helpers import REPO, TIMING, run_cli_process


@pytest.mark.parametrize("environ, gpu_build, chosen, in_use", [
    ({}, None, "NaiveEngine", "NaiveEngine"),  # one CPU process of the CPU build
    ({}, "mxnet-cu112", None, "ThreadedEnginePerDevice"),  # GPU streams run behind the loop
    ({"DMLC_ROLE": "worker"}, None, None, "ThreadedEnginePerDevice"),  # a process of launch.py's job
    ({"HOROVOD_RANK": "1"}, None, None, "ThreadedEnginePerDevice"),  # of horovodrun's
    ({"OMPI_COMM_WORLD_RANK": "0"}, None, None, "ThreadedEnginePerDevice"),  # of mpirun's
    ({"MXNET_ENGINE_TYPE": "ThreadedEngine"}, None, None, "ThreadedEngine"),  # the user's, as given
    ({"MXNET_ENGINE_TYPE": "NaiveEngine"}, "mxnet-cu112", None, "NaiveEngine"),
])
def test_the_engine_each_process_chooses(environ, gpu_build, chosen, in_use):
    assert engine.choose(environ, gpu_build) == chosen
    assert engine.in_use(chosen, environ) == in_use


PROCESS = """
import json, os, sys
from common import runtime
runtime.prepare()
import mxnet as mx
x = mx.nd.ones((256, 256))
for _ in range(20):
    x = mx.nd.dot(x, x) / 256
x.wait_to_read()
print(json.dumps({"engine": runtime.setup().engine, "variable": os.environ.get("MXNET_ENGINE_TYPE"),
                  "threads": len(os.listdir("/proc/self/task"))}))
"""


def prepared_process(env):
    environment = {k: v for k, v in os.environ.items() if k != "MXNET_ENGINE_TYPE"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(PROCESS)], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env=dict(environment, PYTHONPATH=REPO, **env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_a_prepared_cpu_process_runs_the_naive_engine_and_keeps_it_to_itself():
    naive, stderr = prepared_process({})
    threaded, _ = prepared_process({"MXNET_ENGINE_TYPE": "ThreadedEnginePerDevice"})
    assert naive["engine"] == "NaiveEngine" and threaded["engine"] == "ThreadedEnginePerDevice"
    assert naive["variable"] is None  # the environment its children inherit is the user's
    assert engine.ENGINE_LINE not in stderr  # MXNet's log line of a chosen engine is not shown
    # No worker threads: operators run in the Python thread (the threaded engine adds its own).
    assert naive["threads"] < threaded["threads"]


def test_a_run_computes_the_same_numbers_on_either_engine(data_dir, tmp_path):
    runs = {}
    for name, env in (("NaiveEngine", {}), ("ThreadedEnginePerDevice", {"MXNET_ENGINE_TYPE": "ThreadedEnginePerDevice"})):
        result = run_cli_process("--data-dir", data_dir, "--classes", "0,1", "--epochs", "2",
                                 "--output-dir", str(tmp_path / name), env=env)
        assert result.returncode == 0, result.stderr
        runs[name] = [{k: v for k, v in json.loads(line).items() if k not in TIMING}
                      for line in result.stdout.splitlines()]
        assert json.load(open(tmp_path / name / "config.json"))["mxnet_engine"] == name
    assert runs["NaiveEngine"] == runs["ThreadedEnginePerDevice"] and len(runs["NaiveEngine"]) == 2


def test_an_engine_mxnet_does_not_have_is_one_line_before_anything_starts(tmp_path):
    with pytest.raises(engine.EngineError, match="MXNET_ENGINE_TYPE=Bogus is not an engine of MXNet's"):
        engine.choose({"MXNET_ENGINE_TYPE": "Bogus"}, None)
    result = run_cli_process("--classes", "0,1", "--data-dir", str(tmp_path), env={"MXNET_ENGINE_TYPE": "Bogus"})
    assert result.returncode == 1 and not result.stdout
    assert result.stderr.splitlines() == ["error: MXNET_ENGINE_TYPE=Bogus is not an engine of MXNet's: give one of "
                                          "NaiveEngine, ThreadedEngine, ThreadedEnginePerDevice, or unset it"]
