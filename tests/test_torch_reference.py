"""tools/torch_reference.py, the spec's reference in PyTorch that the speed and accuracy figures
compare against, tools/torch_best.py, the same sped up, and tools/torch_airbench94.py, airbench94
in PyTorch: they read the data as training does, train where torch is installed, and without
torch say how to get it."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data import load_cifar10, prepare
from helpers import REPO
from tools import torch_reference


def test_the_reference_reads_the_same_images_labels_and_normalisation_as_training(data_dir):
    x, y, test_x, test_y = torch_reference.load(data_dir, [2, 0])
    ours = prepare(*load_cifar10(data_dir, progress=False), classes=[2, 0], class_names=list("abcdefghij"))
    train = ours.train_x.asnumpy()
    assert x.shape == train.shape and np.array_equal(y, ours.train_y.asnumpy().astype(np.int64))
    np.testing.assert_allclose(x, train, atol=1e-5)  # the same per-channel mean and std
    assert sorted(test_y.tolist()) == sorted(ours.test_y.asnumpy().astype(int).tolist())  # ours shuffles it


@pytest.mark.parametrize("script, what, args, least", [
    ("torch_reference.py", "reference", ["--classes", "0,1", "--epochs", "1"], 0.9),
    ("torch_best.py", "comparison", ["--classes", "0,1", "--epochs", "1"], 0.9),
    ("torch_airbench94.py", "airbench94", ["--epochs", "0.02"], None)])
def test_it_trains_where_torch_is_installed_and_says_how_to_get_it_elsewhere(data_dir, script, what, args, least):
    if least is None and importlib.util.find_spec("torch") is not None:
        pytest.skip("airbench94's whitening of these synthetic images is degenerate: it runs on real ones")
    result = subprocess.run([sys.executable, os.path.join(REPO, "tools", script), data_dir, *args],
                            capture_output=True, text=True, timeout=300)
    if importlib.util.find_spec("torch") is None:  # the test environment: torch has one of its own
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("error: the PyTorch %s needs torch (" % what)
        assert "pip install -r requirements-torch.txt" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["test_acc"] > least
