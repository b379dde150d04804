"""Reading a trained model: what a path names, an export's meta, loading a model for prediction
(MXNet or ONNX Runtime) and a network's features for fine-tuning. (Writing an export:
export.py; checkpoints: checkpoint.py.)

    PATH-symbol.json, -0000.params, -meta.json   an export (export.py)
    PATH.onnx                                    the same network for ONNX Runtime
    PREFIX-NNNN.*                                a checkpoint: it predicts and fine-tunes too

onnxruntime is optional (requirements-onnx.txt) and imported only when used.
"""
import json
import os
import warnings
from collections import namedtuple

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

import models
from common.cli import UserError

from . import checkpoint

FORMAT = 1  # of PATH-meta.json; a file of another format is refused on load
INSTALL = "pip install --no-deps -r requirements-onnx.txt (or ./train.sh, which does)"


class ModelError(UserError):
    """A path that names no usable trained model. The message says which file and what to do."""


class OnnxError(ModelError):
    """ONNX is not installed, or a network cannot be written as or run from an ONNX file."""


# ----------------------------------------------------------------------------------------------
# What a path names

ModelPath = namedtuple("ModelPath", "kind prefix epoch")  # kind: 'onnx', 'export' or 'checkpoint'


def identify(path):
    """What a model path names: ModelPath('onnx', PATH, None) for PATH.onnx beside
    PATH-meta.json, ('export', PATH, None) when PATH-meta.json exists, else ('checkpoint',
    PREFIX, N) for PREFIX-NNNN. Raises ModelError for anything else."""
    if path.endswith(".onnx"):
        if not os.path.isfile(path):
            raise ModelError("%s does not exist" % path)
        if not os.path.isfile(path[:-5] + "-meta.json"):
            raise ModelError("%s has no %s-meta.json beside it (class names and input "
                             "normalisation): give the whole export folder" % (path, path[:-5]))
        return ModelPath("onnx", path[:-5], None)
    if os.path.isfile(path + "-meta.json"):
        return ModelPath("export", path, None)
    prefix, _, epoch = path.rpartition("-")
    if prefix and epoch.isdigit():
        return ModelPath("checkpoint", prefix, int(epoch))
    raise ModelError("%s is neither an export (no %s-meta.json) nor a checkpoint PREFIX-NNNN"
                     % (path, path))


def read_meta(path, remedy):
    """The meta of a model path (its export's PATH-meta.json, or its checkpoint's record, checked
    file by file), with batch_statistics, and tta_level: the test-time augmentation the model is
    evaluated with (its run's --tta-level; 0: none). remedy: what the command that reads it
    advises for a damaged checkpoint. Raises ModelError or checkpoint.CheckpointError."""
    found = identify(path)
    if found.kind == "checkpoint":
        meta = checkpoint.read(found.prefix, found.epoch, remedy)
        return dict(meta, batch_statistics=models.uses_batch_statistics(meta["model"]),
                    tta_level=meta["config"].get("tta_level", 0))
    meta_path = found.prefix + "-meta.json"
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        written_format = meta.get("format")
    except (ValueError, AttributeError) as e:
        raise ModelError("%s is damaged (%s): export the model again with --export" % (meta_path, e)) from None
    if written_format != FORMAT:
        raise ModelError("%s is an export of format %s; this code reads format %d: use the version "
                         "of this project that wrote it" % (meta_path, written_format, FORMAT))
    return dict(meta, tta_level=meta.get("tta_level", 0))  # 0 in exports written before it


# ----------------------------------------------------------------------------------------------
# Loading for prediction

class MXNetNet:
    """A network in MXNet: call it on normalised float32 NCHW images (numpy) for their logits.

    batch_statistics (the spec'd network): in train mode, since the graph's BatchNorm must use
    batch statistics (in predict mode an exported graph would use its stored 0/1 moving
    statistics and not normalise at all). Nothing is recorded, so nothing in the model changes.
    Otherwise (the other networks) in predict mode, with their running statistics.
    """

    def __init__(self, net, ctx, batch_statistics):
        self.net, self.ctx, self.batch_statistics = net, ctx, batch_statistics

    def __call__(self, images):
        with (autograd.train_mode() if self.batch_statistics else autograd.predict_mode()):
            return self.net(mx.nd.array(images, ctx=self.ctx)).asnumpy()


class OnnxNet:
    """An ONNX file in ONNX Runtime (CPU): call it on float32 NCHW images for their logits."""

    def __init__(self, path):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about graphs, not inputs
        options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
        errors = ort.capi.onnxruntime_pybind11_state  # ORT's own exceptions (InvalidProtobuf, Fail, ...)
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except (errors.InvalidProtobuf, errors.InvalidGraph, errors.Fail, errors.NoSuchFile) as e:
            raise OnnxError("%s is not an ONNX model ONNX Runtime can load (%s); export it again "
                            "with --export" % (path, str(e).split(" : ")[-1])) from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, images):
        return self.session.run(None, {self.input: np.ascontiguousarray(images, np.float32)})[0]


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise OnnxError("running an ONNX file needs the onnxruntime package: %s" % INSTALL) from None
    return onnxruntime


def load(path, ctx=None, remedy="predict with another checkpoint or an export"):
    """(a callable from normalised images to logits, meta) for an ONNX file (PATH.onnx, run by
    ONNX Runtime), an MXNet export (PATH) or a checkpoint (PREFIX-NNNN). ctx: where MXNet runs
    it (None: the CPU)."""
    ctx = ctx or mx.cpu()
    found = identify(path)
    meta = read_meta(path, remedy)
    if found.kind == "onnx":
        return OnnxNet(path), meta
    if found.kind == "export":
        with warnings.catch_warnings():  # "Cannot decide type ... data": it is float32, given at call
            warnings.filterwarnings("ignore", message="Cannot decide type")
            net = gluon.nn.SymbolBlock.imports(path + "-symbol.json", ["data"], path + "-0000.params",
                                               ctx=ctx)
        return MXNetNet(net, ctx, meta["batch_statistics"]), meta
    return MXNetNet(checkpoint_network(found.prefix, meta, ctx), ctx, meta["batch_statistics"]), meta


def checkpoint_network(prefix, record, ctx):
    """The network of the checkpoint whose record checkpoint.read gave, with its parameters,
    hybridized, on ctx."""
    net = models.build(record["model"], record["num_classes"], [ctx])
    net.load_parameters(checkpoint.paths(prefix, record["epoch"])["params"], ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


# ----------------------------------------------------------------------------------------------
# Loading for fine-tuning

def load_features(path, net):
    """Copies the `features` weights of a checkpoint (PREFIX-NNNN) or export (PATH, or its
    PATH.onnx: the MXNet weights beside it) into net. The output layer is left as initialised:
    fine-tuning gives it the new number of classes. The spec'd network (its batch-statistics form,
    which trains) keeps its BatchNorms' moving statistics as they are: an export's population
    statistics belong to the data it was trained on."""
    found = identify(path)
    if found.kind == "checkpoint":
        record = checkpoint.read(found.prefix, found.epoch, "fine-tune from another checkpoint or an export")
        source = checkpoint_network(found.prefix, record, mx.cpu())
        saved = {models.unprefixed(p.name): p.data() for p in source.collect_params().values()}
    else:
        saved = {models.unprefixed(k.split(":", 1)[1]): v
                 for k, v in mx.nd.load(found.prefix + "-0000.params").items()}
    keeps_moving_statistics = getattr(net, "population_statistics", None) is False
    for param in net.features.collect_params().values():
        key = models.unprefixed(param.name)
        if keeps_moving_statistics and key.endswith(("running_mean", "running_var")):
            continue
        if key not in saved or saved[key].shape != param.shape:
            raise ModelError("--finetune %s: it has no %s of shape %s; it is not this network"
                             % (path, key, param.shape))
        param.set_data(saved[key])
