"""The data a trained model was trained on, found again from its meta (an export's PATH-meta.json
or a checkpoint's record): its test set for prediction, its whole dataset for population
statistics, and images prepared as it saw them."""
import numpy as np

from .cifar import LAYOUTS, DataError
from .pipeline import network_input, prepare, test_set
from .sources import open_source


def model_input(images, meta):
    """uint8 NCHW images as the model saw its test set in training: normalised with the statistics
    it was trained with (not those of the data at hand), centrally cropped to its input size."""
    return network_input(images, np.array(meta["mean"], dtype=np.float32),
                         np.array(meta["std"], dtype=np.float32), meta.get("input_size", 32))


def _source(meta, data_dir, progress=False):
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
    source, classes = _source(meta, data_dir)
    _, _, test_x, test_y = source.load()
    return test_set(test_x, test_y, classes, np.array(meta["mean"], dtype=np.float32),
                    np.array(meta["std"], dtype=np.float32), meta.get("input_size", 32))


def model_dataset(meta, data_dir=None, progress=True):
    """The data.Dataset a model was trained on, prepared as training prepared it (its training
    images for population statistics, its test set for accuracies). Raises DataError when the
    data found is not that data (its normalisation statistics differ)."""
    source, classes = _source(meta, data_dir, progress)
    dataset = prepare(*source.load(), classes=classes, class_names=source.class_names,
                      input_size=meta.get("input_size", 32))
    if not (np.allclose(dataset.mean, meta["mean"], atol=1e-6) and np.allclose(dataset.std, meta["std"], atol=1e-6)):
        raise DataError("the %s data found%s is not what this model was trained on (its per-channel "
                        "mean and std differ): give its folder with --data-dir"
                        % (source.name, " in %s" % data_dir if data_dir else ""))
    return dataset
