"""The data: CIFAR-10 and CIFAR-100 download and validation (cifar.py), your own image folders
and RecordIO files (images.py), normalisation and batching (pipeline.py)."""
from .cifar import (CIFAR10, CIFAR10_CLASSES, CIFAR100, LAYOUTS, DataError, class_names,
                    default_data_dir, fetch, load, load_cifar10, parse_classes)
from .images import list_folder, load_image_folder, load_records, pack_records, record_classes
from .pipeline import Dataset, augment, batches, center_crop, num_batches, prepare

CLASS_NAMES = CIFAR10_CLASSES

__all__ = ["CIFAR10", "CIFAR100", "CLASS_NAMES", "LAYOUTS", "DataError", "class_names",
           "default_data_dir", "fetch", "load", "load_cifar10", "parse_classes",
           "list_folder", "load_image_folder", "load_records", "pack_records", "record_classes",
           "Dataset", "augment", "batches", "center_crop", "num_batches", "prepare"]
