"""Writing a trained network for deployment: the export that predict.py, export_model.py and
fine-tuning read (saved_model.py reads it).

    PATH-symbol.json, PATH-0000.params   the network's graph and weights (HybridBlock.export)
    PATH-meta.json                       classes, input normalisation, the run's settings,
                                         whether the graph normalises with batch statistics, and
                                         the test-time augmentation it is evaluated with (tta_level)
    PATH.onnx                            the same network for ONNX Runtime

The files are written in a hidden folder beside PATH and moved into place when all are complete,
PATH-meta.json last; an older export at PATH loses its meta first. So an export stopped at any
moment leaves no half-written file and nothing that passes for an export.

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
onnx is optional (requirements-onnx.txt) and imported only when used.
"""
import contextlib
import os
import tempfile

import mxnet as mx
import numpy as np

import models
from common import interrupts
from common.files import atomic_write, write_json

from .saved_model import FORMAT, INSTALL, OnnxError

OPSET = 13  # the highest opset MXNet 1.9.1's converters write
BATCH_AXIS = "batch"  # the name of the free first input dimension
SUFFIXES = ("-symbol.json", "-0000.params", ".onnx", "-meta.json")  # the order they are put in place


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
    interrupts.reach("export")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    for suffix in ("-meta.json", ".onnx"):  # an older export here is no longer one
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    batch_statistics = (models.uses_batch_statistics(meta["model"])
                        and not getattr(net, "population_statistics", False))
    with tempfile.TemporaryDirectory(prefix=".export-", dir=folder) as staging:
        draft = os.path.join(staging, os.path.basename(path))
        _export_graph(net, draft, sample)
        interrupts.reach("export", point="export files")
        try:
            write_onnx(draft, draft + ".onnx", meta["input_size"], batch_statistics)
            no_onnx = None
        except OnnxError as e:
            no_onnx = str(e)
        write_json(draft + "-meta.json", dict(meta, format=FORMAT, batch_statistics=batch_statistics,
                                              tta_level=meta.get("config", {}).get("tta_level", 0),
                                              symbol=os.path.basename(path) + "-symbol.json",
                                              params=os.path.basename(path) + "-0000.params"))
        for suffix in SUFFIXES:
            if os.path.exists(draft + suffix):
                os.replace(draft + suffix, path + suffix)
    written = [path + s for s in ("-symbol.json", "-0000.params", "-meta.json", ".onnx") if os.path.exists(path + s)]
    return written, no_onnx


def _export_graph(net, path, sample):
    """net.export to PATH-symbol.json and PATH-0000.params, traced in the form every MXNet build
    runs (the spec'd network's `portable`: without its CPU-only forms)."""
    with net.portable() if hasattr(net, "portable") else contextlib.nullcontext():
        net(sample)  # traces the graph to export; nothing is recorded, nothing in the net changes
        net.export(path, epoch=0)


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
