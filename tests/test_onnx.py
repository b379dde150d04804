"""ONNX: every network type exported by --export runs in ONNX Runtime as it does in MXNet, the
spec'd network with each batch's statistics; what cannot be exported still gets its MXNet export."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import onnx
import pytest
from mxnet import autograd, gluon

from helpers import REPO, export_network as export, run_cli_process, trained_a_little
from training import saved_model

NETWORKS = ["spec-resnet", "cifar_resnet20_v1", "inception-bn-small", "sub-inception-rrelu"]


@pytest.mark.parametrize("name", NETWORKS)
def test_each_network_type_predicts_the_same_in_onnx_runtime_as_in_mxnet(name, tmp_path):
    net = trained_a_little(name)
    written, no_onnx = export(net, name, str(tmp_path / "ex"))
    assert no_onnx is None and written[-1] == str(tmp_path / "ex.onnx")
    in_mxnet, meta = saved_model.load(str(tmp_path / "ex"), mx.cpu())
    in_onnx, _ = saved_model.load(str(tmp_path / "ex.onnx"), mx.cpu())
    size = meta["input_size"]
    for batch in (1, 5, 8):  # the batch axis is free
        x = np.random.RandomState(batch).normal(size=(batch, 3, size, size)).astype(np.float32)
        expected, got = in_mxnet(x), in_onnx(x)
        assert got.shape == (batch, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    graph = onnx.load(str(tmp_path / "ex.onnx"))
    assert graph.opset_import[0].version == 13 and not {i.name for i in graph.graph.input} & \
        {t.name for t in graph.graph.initializer}  # weights are constants, not inputs


def test_the_spec_network_in_onnx_normalises_with_each_batch_statistics(tmp_path):
    net = trained_a_little("spec-resnet")
    export(net, "spec-resnet", str(tmp_path / "ex"))
    in_onnx, _ = saved_model.load(str(tmp_path / "ex.onnx"), mx.cpu())
    rng = np.random.RandomState(0)
    image = rng.normal(size=(1, 3, 32, 32)).astype(np.float32)
    companions = [rng.normal(loc=loc, size=(7, 3, 32, 32)).astype(np.float32) for loc in (0.0, 2.0)]
    with autograd.train_mode():  # the trained network itself, on the same batches
        expected = [net(mx.nd.array(np.concatenate([image, c]))).asnumpy()[0] for c in companions]
    got = [in_onnx(np.concatenate([image, c]))[0] for c in companions]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert np.abs(got[0] - got[1]).max() > 1e-2  # one image, two batches: two predictions
    ops = {node.op_type for node in onnx.load(str(tmp_path / "ex.onnx")).graph.node}
    assert "BatchNormalization" not in ops and "ReduceMean" in ops


class NotConvertible(gluon.HybridBlock):
    """x >= 0 is MXNet's _greater_equal_scalar, for which MXNet 1.9.1 has no ONNX converter."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense = gluon.nn.Dense(3, in_units=3 * 32 * 32)

    def hybrid_forward(self, F, x):
        return self.dense(F.where(x >= 0, x, x * 0.1))


def test_a_network_onnx_cannot_write_gets_its_mxnet_export_and_loses_a_stale_onnx_file(tmp_path):
    (tmp_path / "ex.onnx").write_bytes(b"an older model's ONNX file")
    net = NotConvertible()
    net.initialize()
    net.hybridize()
    written, no_onnx = export(net, "cifar_resnet20_v1", str(tmp_path / "ex"))
    assert "cannot write this network" in no_onnx and "_greater_equal_scalar" in no_onnx
    assert written == [str(tmp_path / n) for n in ("ex-symbol.json", "ex-0000.params", "ex-meta.json")]
    assert all(os.path.isfile(path) for path in written) and not (tmp_path / "ex.onnx").exists()


def without(tmp_path, package):
    """PYTHONPATH under which `import package` fails as it does where it is not installed."""
    folder = tmp_path / ("no-" + package)
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text('raise ImportError("No module named %r")\n' % package)
    return {"PYTHONPATH": str(folder)}


def test_without_onnx_installed_training_says_what_to_install_and_writes_the_mxnet_export(data_dir, tmp_path):
    result = run_cli_process("--data-dir", data_dir, "--classes", "0,1", "--epochs", "1", "--quiet",
                             "--export", str(tmp_path / "ex"), env=without(tmp_path, "onnx"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        "warning: no ONNX file (ONNX export needs the onnx package: pip install --no-deps -r "
        "requirements-onnx.txt (or ./train.sh, which does)); the MXNet export is written")
    assert (tmp_path / "ex-0000.params").is_file() and not (tmp_path / "ex.onnx").exists()


def test_without_onnxruntime_installed_predict_says_what_to_install(tmp_path):
    net = trained_a_little("spec-resnet")
    export(net, "spec-resnet", str(tmp_path / "ex"))
    image = tmp_path / "x.bin"
    image.write_bytes(bytes(3073))
    result = subprocess.run([sys.executable, os.path.join(REPO, "predict.py"), str(tmp_path / "ex.onnx"),
                             str(image)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **without(tmp_path, "onnxruntime")))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == ("error: running an ONNX file needs the onnxruntime package: pip install "
                                     "--no-deps -r requirements-onnx.txt (or ./train.sh, which does)")
    with_it = subprocess.run([sys.executable, os.path.join(REPO, "predict.py"), str(tmp_path / "ex.onnx"),
                              str(image)], capture_output=True, text=True, timeout=300)
    assert with_it.returncode == 0 and json.loads(with_it.stdout)["class"] in ("c0", "c1", "c2")


def test_a_truncated_onnx_file_is_one_clear_error(tmp_path):
    net = trained_a_little("spec-resnet")
    export(net, "spec-resnet", str(tmp_path / "ex"))
    whole = (tmp_path / "ex.onnx").read_bytes()
    (tmp_path / "ex.onnx").write_bytes(whole[:len(whole) // 3])
    image = tmp_path / "x.bin"
    image.write_bytes(bytes(3073))
    result = subprocess.run([sys.executable, os.path.join(REPO, "predict.py"), str(tmp_path / "ex.onnx"),
                             str(image)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: %s is not an ONNX model ONNX Runtime can load" % (tmp_path / "ex.onnx"))
    assert len(result.stderr.strip().splitlines()) == 1
