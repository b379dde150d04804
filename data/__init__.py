"""CIFAR-10 data: download and validation (cifar10.py), normalisation and batching (pipeline.py)."""
from .cifar10 import CLASS_NAMES, DataError, default_data_dir, load_cifar10, parse_classes
from .pipeline import Dataset, batches, num_batches, prepare

__all__ = ["CLASS_NAMES", "DataError", "default_data_dir", "load_cifar10", "parse_classes",
           "Dataset", "batches", "num_batches", "prepare"]
