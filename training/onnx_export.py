"""ONNX: writing an exported network as an ONNX file, and running one with ONNX Runtime.

onnx and onnxruntime are optional (requirements-onnx.txt) and imported only here, when used.

The graph comes from MXNet's own converter (mx.onnx), at opset 13, the highest its converters
write (current ONNX Runtime releases run opsets 7 and newer), with the batch axis left free
("batch"). Two things are changed in the converter's graph:
- The weights are constants, not graph inputs as well (ONNX Runtime would not fold them).
- For a network that normalises with each batch's statistics (the spec'd network), MXNet's
  converter writes ONNX BatchNormalization, which always uses the stored statistics (0 and 1
  here): every such node is replaced by the batch-statistics formula in explicit operators,
  y = (x - mean) / sqrt(var + eps) * gamma + beta with mean and biased variance over the batch
  and spatial axes, as MXNet's BatchNorm computes in train mode.
"""
import os

import mxnet as mx
import numpy as np

from .files import atomic_write

OPSET = 13  # the highest opset MXNet 1.9.1's converters write
BATCH_AXIS = "batch"  # the name of the free first input dimension
INSTALL = "pip install --no-deps -r requirements-onnx.txt (or ./train.sh, which does)"


class OnnxError(Exception):
    """ONNX is not installed, or a network cannot be written as or run from an ONNX file."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise OnnxError("ONNX export needs the onnx package: %s" % INSTALL) from None
    return onnx


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise OnnxError("running an ONNX file needs the onnxruntime package: %s" % INSTALL) from None
    return onnxruntime


def export(mxnet_export, path, input_size, batch_statistics):
    """Writes the MXNet export MXNET_EXPORT-symbol.json/-0000.params (net.export) as the ONNX file
    `path` for NCHW float32 images of input_size pixels per side; returns path. Raises OnnxError
    if it cannot."""
    onnx = _onnx()
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph  # what mx.onnx.export_model runs

    sym, arg_params, aux_params = mx.model.load_checkpoint(mxnet_export, 0)
    shape = (1, 3, input_size, input_size)  # traced with one image; the batch axis is then freed
    try:
        graph = MXNetGraph().create_onnx_graph_proto(
            sym, dict(arg_params, **aux_params), [shape], [onnx.TensorProto.FLOAT],
            opset_version=OPSET, dynamic=True, dynamic_input_shapes=[(None,) + shape[1:]])
    except (AttributeError, NotImplementedError) as e:  # "No conversion function registered ..."
        raise OnnxError("MXNet's ONNX converter cannot write this network: %s" % e) from None
    _weights_as_constants(graph)
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
    if batch_statistics:
        _normalise_with_batch_statistics(onnx, graph)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="mxnet %s" % mx.__version__)
    model.ir_version = 7  # the IR of opset 13; ONNX Runtime 1.16 reads up to 9
    onnx.checker.check_model(model, full_check=True)
    with atomic_write(path) as tmp:
        onnx.save(model, tmp)
    return path


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
