"""The data: CIFAR-10 and CIFAR-100 download and validation (cifar.py), your own image folders
and RecordIO files (images.py), the choice among them (sources.py), normalisation, the test set,
batching and augmentation (pipeline.py), airbench94's alternating flip and translation
(alternating.py), the data a trained model was trained on (trained_on.py)."""
from .cifar import (CIFAR10_CLASSES, LAYOUTS, DataError, class_names, default_data_dir, load_cifar10,
                    parse_classes, read_records)
from .images import list_folder, load_image_folder, load_records, pack_records, read_image
from .alternating import AlternatingFlipTranslate
from .pipeline import (Dataset, PadCropFlip, augment, batches, network_input, num_batches, prepare,
                       shuffled_batches, test_set)
from .sources import DataSource, open_source
from .trained_on import model_dataset, model_input, model_test_set

__all__ = ["CIFAR10_CLASSES", "LAYOUTS", "DataError", "class_names", "default_data_dir", "load_cifar10",
           "parse_classes", "read_records", "list_folder", "load_image_folder", "load_records",
           "pack_records", "read_image", "AlternatingFlipTranslate", "Dataset", "PadCropFlip", "augment",
           "batches", "network_input", "num_batches", "prepare", "shuffled_batches", "test_set", "DataSource",
           "open_source", "model_dataset",
           "model_input", "model_test_set"]
