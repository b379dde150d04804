"""Which data a run trains on: a CIFAR release (the default), an image folder or packed records.

A DataSource names the classes before anything is loaded, so that --classes is checked (and a
run refused) before a download or a decode of thousands of images.
"""
import functools
from dataclasses import dataclass

from .cifar import CIFAR10_CLASSES, LAYOUTS, class_names, default_data_dir, extracted_folder, load
from .images import list_folder, load_image_folder, load_records, record_classes


@dataclass(frozen=True)
class DataSource:
    """The data a run names, listed but not yet loaded."""
    name: str  # recorded in the run's config and as a Comet tag
    class_names: tuple
    load: object  # () -> (train_x, train_y, test_x, test_y): uint8 NCHW images, int labels


def open_source(dataset="cifar10", data_dir=None, data_url=None, coarse_labels=False,
                image_folder=None, rec_prefix=None, progress=True):
    """The DataSource of these settings (train_cifar10.py's data flags). Raises DataError."""
    if image_folder:
        names, _ = list_folder(image_folder)
        return DataSource("image-folder", tuple(names), functools.partial(load_image_folder, image_folder))
    if rec_prefix:
        return DataSource("recordio", tuple(record_classes(rec_prefix)),
                          functools.partial(load_records, rec_prefix))
    layout = LAYOUTS[dataset]
    data_dir = data_dir or default_data_dir(layout)
    label = "coarse" if coarse_labels else "fine"
    load_it = functools.partial(load, layout, data_dir, url=data_url, progress=progress, label=label)
    if layout.key == "cifar10":  # fixed names: --classes is checked before any download
        return DataSource(layout.key, CIFAR10_CLASSES, load_it)
    names = class_names(layout, extracted_folder(layout, data_dir, data_url, progress=progress), label)
    return DataSource(layout.key, tuple(names), load_it)
