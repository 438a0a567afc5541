import numpy as np
import pytest
import torch

from reprozoo.data import (
    image_folder,
    lfw_faces,
    load_digits_tensors,
    split_indices,
    texture_names,
    textures,
    train_val_test,
)
from reprozoo.errors import DataError


def test_digits_shapes_and_options():
    x, y = load_digits_tensors()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,) and x.max() == 1.0 and x.min() == 0.0
    assert torch.bincount(y).tolist()[:3] == [178, 182, 177]
    xb, _ = load_digits_tensors(size=16, binarize=True, channels=3)
    assert xb.shape == (1797, 3, 16, 16) and set(xb.unique().tolist()) == {0.0, 1.0}


def test_bundled_images():
    faces = lfw_faces(size=32)
    assert faces.shape == (200, 1, 32, 32) and 0 <= faces.min() and faces.max() <= 1
    assert set(textures()) == set(texture_names())  # every listed picture exists in scikit-image
    tex = textures(["brick", "astronaut"])
    assert tex["brick"].shape[0] == 3 and tex["astronaut"].shape == (3, 512, 512)
    with pytest.raises(DataError, match="unknown texture 'lava'"):
        textures(["lava"])


def test_split_is_a_stratified_partition():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    parts = split_indices(100, (0.5, 0.3, 0.2), seed=3, labels=labels)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(100))
    assert [len(p) for p in parts] == [50, 30, 20]
    assert np.bincount(labels[parts[0]]).tolist() == [5, 10, 15, 20]
    assert all((a == b).all() for a, b in zip(parts, split_indices(100, (0.5, 0.3, 0.2), 3, labels)))
    with pytest.raises(DataError, match="sum to 1"):
        split_indices(10, (0.5, 0.6))
    x, y = load_digits_tensors()
    tr, va, te = train_val_test(x, y, seed=0)
    assert len(tr) + len(va) + len(te) == 1797


def test_image_folder_reader(tmp_path):
    from PIL import Image

    for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (20 + i, 10), color).save(tmp_path / cls / f"{i}.png")
    Image.new("L", (8, 8), 128).save(tmp_path / "dog" / "gray.png")  # grayscale converted to RGB
    ds = image_folder(tmp_path, image_size=16)
    assert ds.classes == ["cat", "dog"] and len(ds) == 7
    img, label = ds[0]
    assert img.shape == (3, 16, 16) and label == 0 and img[0].mean() == pytest.approx(1.0)
    assert ds[6][0].shape == (3, 16, 16)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    ds = image_folder(tmp_path, image_size=16)
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        [ds[i] for i in range(len(ds))]
    with pytest.raises(DataError, match="does not exist"):
        image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        image_folder(tmp_path / "empty")
