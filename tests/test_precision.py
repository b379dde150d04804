"""Mixed precision (--amp): which precision a device gets, bfloat16 training on a CPU that runs it,
float32 weights in checkpoints and exports, exact resumes, and AMP's loss scaling (its float16
wiring, run here with bfloat16 kernels: these machines have no GPU).

amp.init changes MXNet for the whole process, so everything that turns AMP on runs in a process
of its own."""
import json
import math
import os
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from helpers import REPO, TIMING, archive_messages, copy_checkpoint, digest, experiment_json, predict, run_cli_process
from common import cpu
from training import precision

BF16_CPU = bool(cpu.read().flags & set(cpu.BF16_FLAGS))
needs_bf16_cpu = pytest.mark.skipif(not BF16_CPU, reason="this CPU has neither AVX512_BF16 nor AMX")


# ----------------------------------------------------------------------------------------------
# Which precision, where

@pytest.mark.parametrize("amp, dtype, device, flags, expected", [
    (False, None, "cpu", set(), "float32"),
    (False, None, "gpu", set(), "float32"),
    (True, None, "gpu", set(), "float16"),
    (True, "float16", "gpu", set(), "float16"),
    (True, None, "cpu", {"avx2", "avx512_bf16"}, "bfloat16"),
    (True, "bfloat16", "cpu", {"amx_bf16", "amx_tile"}, "bfloat16"),
])
def test_the_precision_of_each_device(amp, dtype, device, flags, expected):
    assert precision.choose(amp, dtype, device, flags) == expected


@pytest.mark.parametrize("dtype, device, flags, message", [
    (None, "cpu", {"avx2", "avx512f", "avx512_vnni"}, "needs a CPU with AVX512_BF16 or AMX"),
    ("float16", "cpu", {"avx512_bf16"}, "float16 runs on GPUs only"),
    ("bfloat16", "gpu", set(), "no bfloat16 GPU kernels"),
])
def test_a_precision_the_device_cannot_run_is_refused(dtype, device, flags, message):
    with pytest.raises(ValueError, match=message):
        precision.choose(True, dtype, device, flags)


@pytest.mark.parametrize("args, message", [
    (["--amp", "--amp-dtype", "float16"], "--amp-dtype float16 runs on GPUs only"),
    (["--amp-dtype", "bfloat16"], "--amp-dtype would have no effect: it chooses the precision of --amp"),
    (["--amp", "--num-gpus", "1", "--amp-dtype", "bfloat16"], "no bfloat16 GPU kernels"),
])
def test_precision_flags_that_cannot_work_are_usage_errors(data_dir, args, message, usage):
    assert message in usage("--data-dir", data_dir, "--classes", "0,1", *args)


@pytest.mark.skipif(BF16_CPU, reason="this CPU runs bfloat16 (the run is tested below)")
def test_amp_on_a_cpu_without_bfloat16_is_a_usage_error_naming_the_feature(data_dir, usage):
    assert "AVX512_BF16 or AMX" in usage("--data-dir", data_dir, "--classes", "0,1", "--amp")


# ----------------------------------------------------------------------------------------------
# A bfloat16 run

def train(data_dir, *args, env=None):
    result = run_cli_process("--data-dir", data_dir, "--classes", "0,1", "--amp", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result, [{k: v for k, v in json.loads(line).items() if k not in TIMING}
                    for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def amp_run(data_dir, tmp_path_factory):
    """3 bfloat16 epochs with a checkpoint after each and an export."""
    folder = tmp_path_factory.mktemp("amp")
    result, metrics = train(data_dir, "--epochs", "3", "--model-prefix", str(folder / "m"),
                            "--export", str(folder / "export"), "--output-dir", str(folder / "run"),
                            env={"COMET_DISABLE": "", "COMET_API_KEY": "", "HOME": str(folder)})  # Comet offline
    return folder, result, metrics


@needs_bf16_cpu
def test_an_amp_run_on_this_cpu_trains_in_bfloat16_and_says_so(amp_run):
    folder, result, metrics = amp_run
    assert "in bfloat16 mixed precision" in result.stderr
    assert [m["epoch"] for m in metrics] == [0, 1, 2] and metrics[-1]["test_acc"] > 0.9
    config = json.load(open(folder / "run" / "config.json"))
    assert config["precision"] == "bfloat16" and config["amp"] is True
    archive, messages = archive_messages(str(folder / "run"))
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
              for m in messages if m["type"] == "parameter_msg"}
    assert params["precision"] == "bfloat16" and "bfloat16" in experiment_json(archive)["tags"]
    machine = cpu.read()  # what it ran on, for runs compared on a dashboard
    assert params["cpu_model"] == config["cpu_model"] == machine.name
    assert params["kernels"] == config["kernels"] == ("AMX" if set(cpu.AMX_FLAGS) <= machine.flags else "AVX512_BF16")
    record = json.load(open(folder / "m-0003.json"))
    assert record["config"]["precision"] == "bfloat16"
    assert record["loss_scale"] == {"loss_scale": 1.0, "next_loss_scale": 1.0, "unskipped": 0}
    params = mx.nd.load(str(folder / "m-0003.params"))
    assert params and {v.dtype for v in params.values()} == {np.float32}


@needs_bf16_cpu
def test_a_resumed_amp_run_equals_the_uninterrupted_one_bit_for_bit(amp_run, data_dir, tmp_path):
    folder, _, metrics = amp_run
    prefix = str(tmp_path / "m")
    copy_checkpoint(str(folder / "m"), prefix, 1)
    _, resumed = train(data_dir, "--epochs", "3", "--model-prefix", prefix, "--load-epoch", "1")
    assert resumed == metrics[1:]
    for ext in ("params", "states"):
        assert digest("%s-0003.%s" % (prefix, ext)) == digest(str(folder / ("m-0003.%s" % ext)))


@needs_bf16_cpu
def test_an_amp_export_predicts_in_float32_in_mxnet_and_onnx(amp_run, data_dir, tmp_path):
    folder, _, _ = amp_run
    meta = json.load(open(folder / "export-meta.json"))
    assert meta["config"]["precision"] == "bfloat16"
    assert "amp_cast" not in (folder / "export-symbol.json").read_text()
    predictions = {}
    for model in ("export", "export.onnx"):
        out = tmp_path / ("%s.preds" % model)
        result = predict(str(folder / model), "--data-dir", data_dir, "--out", str(out))
        assert result.returncode == 0, result.stderr
        # measured after training in bfloat16, predicted here in float32: at most one image apart
        assert json.loads(result.stdout)["test_acc"] == pytest.approx(
            meta["test_acc_population_statistics"], abs=1.5 / 80)
        predictions[model] = out.read_text()
    assert predictions["export"] == predictions["export.onnx"]


def convolutions(env):
    """{(pass, problem, data type, kernel)} of the convolutions of a bfloat16 training step of
    the spec'd network (tools.step_profile with oneDNN's log)."""
    result = subprocess.run([sys.executable, "-m", "tools.step_profile", "--amp", "--steps", "1"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, env=dict(os.environ, DNNL_VERBOSE="1", **env))
    assert result.returncode == 0, result.stderr
    found = {(fields[5], fields[-2].split("_ih")[0], fields[6].split("::")[0], fields[4])
             for fields in (line.split(",") for line in result.stdout.splitlines()
                            if line.startswith("dnnl_verbose,exec,cpu,convolution,") and ",mb128_" in line)}
    assert found
    return found


@needs_bf16_cpu
def test_the_image_convolution_is_float32_on_avx512_bf16():
    """oneDNN's AVX512_BF16 kernels have no bfloat16 convolution of 3 channels (its fallback sends
    the next BatchNorm to a reference kernel)."""
    image = {dtype for kind, problem, dtype, _ in convolutions({"DNNL_MAX_CPU_ISA": "AVX512_CORE_BF16"})
             if kind == "forward_training" and "_ic3oc16" in problem}
    assert image == {"src_f32"}


@pytest.mark.skipif(not set(cpu.AMX_FLAGS) <= cpu.read().flags, reason="this CPU has no AMX")
def test_on_amx_every_convolution_but_one_runs_amx_kernels_in_bfloat16():
    """The image's convolution included; the first stage widened to 32 channels (models.spec_resnet),
    since MXNet refuses AMX kernels for 16; left on AVX-512: the image convolution's backward to
    its weights, which oneDNN 2.4.4 has no AMX kernel for."""
    found = convolutions({})
    others = {(kind, problem, kernel) for kind, problem, dtype, kernel in found
              if "amx" not in kernel or dtype != "src_bf16"}
    assert {(kind, problem) for kind, problem, _ in others} == {("backward_weights", "mb128_ic3oc16")}


# ----------------------------------------------------------------------------------------------
# AMP's dynamic loss scaling, as float16 runs it

LOSS_SCALING = """
import json, math
from common import runtime
runtime.prepare()
import mxnet as mx, numpy as np
import models
from training import precision
from training.loop import TrainingDiverged, fit, train_one_epoch
from training.state import TrainState
from training.trainer import make_trainer
from training.schedules import make_schedule
from training.tracking import SilentLog
from data import Dataset

precision.enable("bfloat16")
mx.random.seed(1)
net = models.build(models.SPEC_RESNET, 2, [mx.cpu()])
net.initialize(mx.init.Xavier())
net.hybridize(static_alloc=True, static_shape=True)
rng = np.random.RandomState(0)
x, y = mx.nd.array(rng.randn(16, 3, 32, 32)), mx.nd.array(rng.randint(0, 2, 16))
ce = mx.gluon.loss.SoftmaxCrossEntropyLoss()
def state(lr, loss_fn=ce):
    trainer = make_trainer(net, lr, 0.9, make_schedule("constant", lr, 1, 1))
    precision.attach(trainer, "float16")  # AMP's dynamic scaler, as on a GPU
    return TrainState(net=net, trainer=trainer, ctx=[mx.cpu()], rng=np.random.RandomState(0),
                      loss_fn=loss_fn)
weights = lambda: {k: v.data().asnumpy().copy() for k, v in net.collect_params().items()}
out = {}
# A loss of about 1e10 scaled by 2**100 overflows float32 (as a float16 loss overflows at a scale
# far lower): its gradients are not finite.
s = state(0.01, lambda out, label: ce(out, label) * 1e10)
s.trainer._amp_loss_scaler._loss_scale = s.trainer._amp_loss_scaler._next_loss_scale = 2.0 ** 100
before = weights()
metrics = train_one_epoch(s, x, y, 16)
out["overflow"] = dict(precision.scaler_state(s.trainer), num_update=s.trainer.optimizer.num_update,
                       unchanged=all(np.array_equal(before[k], v) for k, v in weights().items()),
                       train_loss=metrics["train_loss"])
precision.restore_scaler(s.trainer, dict(loss_scale=1024.0, next_loss_scale=1024.0, unskipped=5))
before = weights()
train_one_epoch(s, x, y, 16)
out["clean"] = dict(precision.scaler_state(s.trainer), num_update=s.trainer.optimizer.num_update,
                    changed=all(not np.array_equal(before[k], v) for k, v in weights().items()
                                if k.endswith("weight")))
data = Dataset(x, y, x, y, mean=np.zeros(3), std=np.ones(3), class_names=["a", "b"])
try:
    fit(state(1e30), data, 3, 16, SilentLog())
    out["diverged"] = None
except TrainingDiverged as e:
    out["diverged"] = str(e)
print(json.dumps(out))
"""


@needs_bf16_cpu
def test_an_overflowed_step_is_skipped_and_lowers_the_scale_and_a_real_divergence_still_stops():
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(LOSS_SCALING)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    # The gradients of the scaled loss overflow: no update, the scale halved.
    assert out["overflow"]["unchanged"] and out["overflow"]["num_update"] == 0
    assert out["overflow"]["next_loss_scale"] == 2.0 ** 99 and out["overflow"]["unskipped"] == 0
    assert math.isfinite(out["overflow"]["train_loss"])  # the loss itself is fine: no stop
    # At a scale that fits, every weight moves and the clean steps are counted.
    assert out["clean"]["changed"] and out["clean"]["num_update"] == 1
    assert out["clean"]["loss_scale"] == 1024.0 and out["clean"]["unskipped"] == 6
    # Weights pushed to inf by the rate: every step overflows, the loss is NaN, the run stops.
    assert out["diverged"] and "the training loss became nan" in out["diverged"]
