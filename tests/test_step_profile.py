"""tools.step_profile: a step's time and its operators, for both networks it knows."""
import os
import stat
import subprocess
import sys

import pytest

from helpers import REPO, script_env


@pytest.mark.parametrize("model", ["spec-resnet", "airbench94"])  # 7 convolutions each
def test_it_times_a_step_and_lists_its_operators(model):
    result = subprocess.run([sys.executable, "-m", "tools.step_profile", "--model", model, "--batch-size", "16",
                             "--steps", "2", "--top", "6"], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env=script_env())
    assert result.returncode == 0, result.stderr
    first, *operators = result.stdout.splitlines()
    assert first.startswith("%s, batch 16, float32: " % model) and " s per step (median of 2)" in first
    assert len(operators) == 6
    calls = {line.split()[-1]: float(line.split("calls")[0].split()[-1]) for line in operators}
    # each call counted once, whatever MXNet's engine (NaiveEngine's profiler records most twice)
    assert abs(calls["Convolution"] - 7) <= 0.5 and abs(calls["_backward_Convolution"] - 7) <= 0.5
    shares = [float(line.split("ms")[1].split("%")[0]) for line in operators]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.01
    # MXNet's profiler replaces the file it writes its trace to: never the machine's /dev/null
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
