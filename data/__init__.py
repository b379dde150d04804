"""The data: CIFAR-10 download and validation (cifar10.py), your own image folders and RecordIO
files (images.py), normalisation and batching (pipeline.py)."""
from .cifar10 import CLASS_NAMES, DataError, default_data_dir, load_cifar10, parse_classes
from .images import list_folder, load_image_folder, load_records, pack_records, record_classes
from .pipeline import Dataset, augment, batches, num_batches, prepare

__all__ = ["CLASS_NAMES", "DataError", "default_data_dir", "load_cifar10", "parse_classes",
           "list_folder", "load_image_folder", "load_records", "pack_records", "record_classes",
           "Dataset", "augment", "batches", "num_batches", "prepare"]
