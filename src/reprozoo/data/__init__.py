"""Offline data sources shared by several methods, and real-format readers."""

from reprozoo.data.folders import image_folder
from reprozoo.data.sources import lfw_faces, load_digits_tensors, texture_names, textures
from reprozoo.data.splits import TensorDataset, split_indices, train_val_test

__all__ = [
    "image_folder", "lfw_faces", "load_digits_tensors", "split_indices", "texture_names",
    "textures", "train_val_test", "TensorDataset",
]
