"""A trained model on disk: writing an export, finding what a path names, and loading a model
for prediction or its features for fine-tuning.

    PATH-symbol.json, PATH-0000.params   the network's graph and weights (HybridBlock.export)
    PATH-meta.json                       classes, input normalisation, the run's settings, and
                                         whether the graph normalises with batch statistics
    PATH.onnx                            the same network for ONNX Runtime
    PREFIX-NNNN.*                        a checkpoint (checkpoint.py): it predicts and fine-tunes too

The ONNX file is written by MXNet's own converter (mx.onnx.export_model), then adjusted:
- Its nodes are those of opset 13, the highest MXNet 1.9.1's converters write, and are declared
  so (the converter stamps the installed onnx package's newest opset, whose ReduceMean no longer
  takes axes as an attribute). The batch axis is free ("batch").
- The weights are constants, not graph inputs as well (ONNX Runtime would not fold them).
- For a network that normalises with each batch's statistics (the spec'd network), the
  converter's BatchNormalization, which always uses the stored statistics (0 and 1 here), is
  replaced by the batch-statistics formula in explicit operators, y = (x - mean) /
  sqrt(var + eps) * gamma + beta with mean and biased variance over the batch and spatial axes,
  as MXNet's BatchNorm computes in train mode.
onnx and onnxruntime are optional (requirements-onnx.txt) and imported only when used.
"""
import json
import os
import warnings
from collections import namedtuple

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

import models
from common.files import atomic_write, write_json
from data import LAYOUTS, DataError, network_input, open_source, prepare, test_set

from . import checkpoint

FORMAT = 1  # of PATH-meta.json; a file of another format is refused on load
OPSET = 13  # the highest opset MXNet 1.9.1's converters write
BATCH_AXIS = "batch"  # the name of the free first input dimension
INSTALL = "pip install --no-deps -r requirements-onnx.txt (or ./train.sh, which does)"


class ModelError(Exception):
    """A path that names no usable trained model. The message says which file and what to do."""


class OnnxError(ModelError):
    """ONNX is not installed, or a network cannot be written as or run from an ONNX file."""


# ----------------------------------------------------------------------------------------------
# Writing an export

def export(net, path, meta, sample):
    """Writes PATH-symbol.json, PATH-0000.params (net.export), PATH-meta.json and PATH.onnx.

    meta: what checkpoint.model_meta gives (classes, normalisation, settings), and the test
    accuracies measured (population.accuracies). net: the trained network, or for the spec'd
    network its population form (population.deployment_network); the meta's batch_statistics
    says which. The graph is traced on `sample` (a batch on the net's context) without the
    CPU-only fused BatchNorm+ReLU operator, so that an export made on a CPU also runs on a GPU
    build. Returns (the files written, None or why no ONNX file was written): a network or an
    installation that ONNX cannot serve still gets its MXNet export.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fused = getattr(net, "fused_bn_relu", False)
    if fused:
        net.fuse_bn_relu(False)
    try:
        net(sample)  # traces the graph to export; nothing is recorded, nothing in the net changes
        net.export(path, epoch=0)
    finally:
        if fused:
            net.fuse_bn_relu(True)
    batch_statistics = (models.uses_batch_statistics(meta["model"])
                        and not getattr(net, "population_statistics", False))
    record = dict(meta, format=FORMAT, batch_statistics=batch_statistics,
                  symbol=os.path.basename(path) + "-symbol.json",
                  params=os.path.basename(path) + "-0000.params")
    write_json(path + "-meta.json", record)
    written = [path + "-symbol.json", path + "-0000.params", path + "-meta.json"]
    try:
        written.append(write_onnx(path, path + ".onnx", meta["input_size"], batch_statistics))
    except OnnxError as e:
        if os.path.exists(path + ".onnx"):  # an older model's: it must not pass for this one
            os.remove(path + ".onnx")
        return written, str(e)
    return written, None


def write_onnx(mxnet_export, path, input_size, batch_statistics):
    """Writes the MXNet export MXNET_EXPORT-symbol.json/-0000.params as the ONNX file `path` for
    NCHW float32 images of input_size pixels per side; returns path. Raises OnnxError."""
    onnx = _onnx()
    import mxnet.onnx  # noqa: F401  (MXNet's converter: imports onnx, so only when it is there)

    shape = (1, 3, input_size, input_size)  # traced with one image; the batch axis is then freed
    with atomic_write(path) as tmp:
        try:
            mx.onnx.export_model(mxnet_export + "-symbol.json", mxnet_export + "-0000.params", [shape],
                                 [np.float32], tmp, dynamic=True, dynamic_input_shapes=[(None,) + shape[1:]])
        except (AttributeError, NotImplementedError) as e:  # "No conversion function registered ..."
            raise OnnxError("MXNet's ONNX converter cannot write this network: %s" % e) from None
        graph = onnx.load(tmp).graph
        _weights_as_constants(graph)
        graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
        if batch_statistics:
            _normalise_with_batch_statistics(onnx, graph)
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                       producer_name="mxnet %s" % mx.__version__)
        model.ir_version = 7  # the IR of opset 13; ONNX Runtime 1.16 reads up to 9
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)
    return path


def _onnx():
    try:
        import onnx
    except ImportError:
        raise OnnxError("ONNX export needs the onnx package: %s" % INSTALL) from None
    return onnx


def _weights_as_constants(graph):
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    del graph.input[:]
    graph.input.extend(inputs)


def _normalise_with_batch_statistics(onnx, graph):
    """Replaces each BatchNormalization(x, gamma, beta, mean, var) by explicit operators that
    use the batch's mean and variance (the stored mean and var are dropped)."""
    make = onnx.helper.make_node
    stored = {t.name: t for t in graph.initializer}
    nodes, unused = [], set()
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            nodes.append(node)
            continue
        x, gamma, beta, mean, var = node.input
        eps = next(a.f for a in node.attribute if a.name == "epsilon")
        n = node.name or node.output[0]
        for name in (gamma, beta):  # per channel -> (C, 1, 1), broadcast against NCHW
            values = onnx.numpy_helper.to_array(stored[name])
            graph.initializer.append(onnx.numpy_helper.from_array(
                values.reshape(-1, 1, 1), name + "_chw"))
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(eps, np.float32), n + "_eps"))
        unused.update((gamma, beta, mean, var))
        nodes += [
            make("ReduceMean", [x], [n + "_mean"], axes=[0, 2, 3], keepdims=1),
            make("Sub", [x, n + "_mean"], [n + "_centred"]),
            make("Mul", [n + "_centred", n + "_centred"], [n + "_squares"]),
            make("ReduceMean", [n + "_squares"], [n + "_var"], axes=[0, 2, 3], keepdims=1),
            make("Add", [n + "_var", n + "_eps"], [n + "_var_eps"]),
            make("Sqrt", [n + "_var_eps"], [n + "_std"]),
            make("Div", [n + "_centred", n + "_std"], [n + "_normalised"]),
            make("Mul", [n + "_normalised", gamma + "_chw"], [n + "_scaled"]),
            make("Add", [n + "_scaled", beta + "_chw"], list(node.output), name=n),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    still_used = {i for node in graph.node for i in node.input}
    kept = [t for t in graph.initializer if t.name not in unused or t.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


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
    file by file), with batch_statistics. remedy: what the command that reads it advises for a
    damaged checkpoint. Raises ModelError or checkpoint.CheckpointError."""
    found = identify(path)
    if found.kind == "checkpoint":
        meta = checkpoint.read(found.prefix, found.epoch, remedy)
        return dict(meta, batch_statistics=models.uses_batch_statistics(meta["model"]))
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
    return meta


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


def model_input(images, meta):
    """uint8 NCHW images as the model saw its test set in training: normalised with the statistics
    it was trained with (not those of the data at hand), centrally cropped to its input size."""
    return network_input(images, np.array(meta["mean"], dtype=np.float32),
                         np.array(meta["std"], dtype=np.float32), meta.get("input_size", 32))


def _model_data(meta, data_dir, progress=False):
    """(DataSource, class indices) of the data a model was trained on (its settings in the meta),
    from data_dir where given, else from where it was trained."""
    config = meta.get("config") or {}
    dataset = config.get("dataset", "cifar10")
    source = open_source(dataset if dataset in LAYOUTS else "cifar10", data_dir or config.get("data_dir"),
                         coarse_labels=config.get("coarse_labels", False),
                         image_folder=config.get("image_folder"), rec_prefix=config.get("rec_prefix"),
                         progress=progress)
    missing = sorted(set(meta["class_names"]) - set(source.class_names))
    if missing:
        raise DataError("this model's classes %s are not among those of %s" % (", ".join(missing), source.name))
    return source, [source.class_names.index(name) for name in meta["class_names"]]


def model_test_set(meta, data_dir):
    """(network input, labels) of the test set of the model's classes in the CIFAR folder
    data_dir, built as training built it (data.test_set: the same order, so the same batches and
    batch statistics)."""
    dataset = (meta.get("config") or {}).get("dataset", "cifar10")
    if dataset not in LAYOUTS:
        raise DataError("this model was trained on %s, not CIFAR-10 or CIFAR-100: --data-dir "
                        "predicts their test sets; give image files instead" % dataset)
    source, classes = _model_data(meta, data_dir)
    _, _, test_x, test_y = source.load()
    return test_set(test_x, test_y, classes, np.array(meta["mean"], dtype=np.float32),
                    np.array(meta["std"], dtype=np.float32), meta.get("input_size", 32))


def model_dataset(meta, data_dir=None, progress=True):
    """The data.Dataset a model was trained on, prepared as training prepared it (its training
    images for population statistics, its test set for accuracies). Raises DataError when the
    data found is not that data (its normalisation statistics differ)."""
    source, classes = _model_data(meta, data_dir, progress)
    dataset = prepare(*source.load(), classes=classes, class_names=source.class_names,
                      input_size=meta.get("input_size", 32))
    if not (np.allclose(dataset.mean, meta["mean"], atol=1e-6) and np.allclose(dataset.std, meta["std"], atol=1e-6)):
        raise DataError("the %s data found%s is not what this model was trained on (its per-channel "
                        "mean and std differ): give its folder with --data-dir"
                        % (source.name, " in %s" % data_dir if data_dir else ""))
    return dataset


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
