"""Datasets in pixel space [0, 1]: the bundled digits, file loaders, ImageFolder trees and one way to walk them.

Nothing is ever downloaded: ``digits()`` ships with scikit-learn and the file loaders read the
official CIFAR / STL-10 / MNIST-family formats from a directory the user gives.
"""

from pyadvt.data.cifar import load_cifar
from pyadvt.data.digits import digits
from pyadvt.data.files import DatasetFormatError
from pyadvt.data.imagefolder import ImageFolder
from pyadvt.data.load import DATASETS, default_root, load_dataset
from pyadvt.data.mnist import load_mnist, read_idx, write_idx
from pyadvt.data.stl10 import load_stl10
from pyadvt.data.stream import as_data, iter_batches, num_batches, num_samples, to_tensor_data
from pyadvt.data.tensor_data import BatchLoader, TensorData

__all__ = ["BatchLoader", "DATASETS", "DatasetFormatError", "ImageFolder", "TensorData", "as_data", "default_root",
           "digits", "iter_batches",
           "load_cifar", "load_dataset", "load_mnist", "load_stl10", "num_batches", "num_samples", "read_idx",
           "to_tensor_data", "write_idx"]
