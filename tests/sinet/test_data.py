import numpy as np
import pytest
import torch
from PIL import Image

from reprozoo.data.portraits import generate_portraits
from reprozoo.data.segfolders import ImageMaskFolder, eg1800, read_image, read_mask
from reprozoo.errors import DataError
from reprozoo.sinet.data import (
    PortraitCropper,
    SegDataset,
    eval_transform,
    mean_std,
    portrait_crops,
    train_transform,
)


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    img, msk = tmp_path / "images", tmp_path / "masks"
    img.mkdir()
    msk.mkdir()
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    _png(img / "a.png", rgb)
    _png(img / "b.png", np.full((6, 8), 77, np.uint8))  # grayscale -> RGB
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[:, :4, 3] = 255  # left half opaque blue, right half transparent -> white
    _png(img / "c.png", rgba)
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 2:6] = 255
    for name in "abc":
        _png(msk / f"{name}.png", m)
    return tmp_path


def test_image_mask_folder_conversions(folder):
    ds = ImageMaskFolder(folder / "images", folder / "masks")
    assert len(ds) == 3
    a, ma = ds[0]
    assert a.shape == (3, 6, 8) and a[0, 0, 0] == 200 and ma.sum() == 8 and ma.max() == 1
    b, _ = ds[1]
    assert torch.all(b == 77)
    c, _ = ds[2]
    assert c[:, 0, 0].tolist() == [0, 0, 255] and c[:, 0, 7].tolist() == [255, 255, 255]


def test_16bit_and_label_masks(tmp_path):
    arr = np.full((4, 4), 65535, np.uint16)
    arr[0, 0] = 257 * 10
    _png(tmp_path / "deep.png", arr)
    img = read_image(tmp_path / "deep.png")
    assert img.dtype == torch.uint8 and img[0, 0, 0] == 10 and img[0, 1, 1] == 255
    labels = np.zeros((4, 4), np.uint8)
    labels[1, 1] = 1  # masks stored as 0/1 labels are used as such
    _png(tmp_path / "lab.png", labels)
    assert read_mask(tmp_path / "lab.png").sum() == 1
    gray = np.full((4, 4), 150, np.uint8)  # 150 <= 200: background under the official threshold
    _png(tmp_path / "gray.png", gray)
    assert read_mask(tmp_path / "gray.png").sum() == 0


def test_reader_errors_name_the_file(folder, tmp_path):
    (folder / "images" / "bad.png").write_bytes(b"not an image")
    _png(folder / "masks" / "bad.png", np.zeros((6, 8), np.uint8))
    ds = ImageMaskFolder(folder / "images", folder / "masks")
    with pytest.raises(DataError, match=r"bad\.png: not a readable image"):
        ds[ds.pairs.index(next(p for p in ds.pairs if p[0].name == "bad.png"))]
    _png(folder / "images" / "d.png", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"d\.png: no mask named d\.\*"):
        ImageMaskFolder(folder / "images", folder / "masks")
    _png(folder / "masks" / "d.png", np.zeros((5, 8), np.uint8))
    ds = ImageMaskFolder(folder / "images", folder / "masks", names=["d"])
    with pytest.raises(DataError, match=r"d\.png: mask is \(8, 5\) \(WxH\) but its image d\.png is \(8, 6\)"):
        ds[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        ImageMaskFolder(empty, folder / "masks")


def test_eg1800_layout(tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "Labels").mkdir()
    for i in range(3):
        _png(tmp_path / "Images" / f"{i:05d}.png", np.full((8, 6, 3), i, np.uint8))
        _png(tmp_path / "Labels" / f"{i:05d}.png", np.full((8, 6), 255 * (i % 2), np.uint8))
    (tmp_path / "eg1800_train.txt").write_text("00000.png\n00002.png\n")
    (tmp_path / "eg1800_test.txt").write_text("00001.png\n")
    train, test = eg1800(tmp_path, "train"), eg1800(tmp_path, "test")
    assert len(train) == 2 and len(test) == 1
    assert train[1][0][0, 0, 0] == 2 and test[0][1].sum() == 48
    with pytest.raises(DataError, match="no split list eg1800_val.txt"):
        eg1800(tmp_path, "val")


def test_mean_std_and_transforms():
    imgs = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    imgs[:, 0] = 255
    imgs[1, 1] = 255
    mean, std = mean_std(imgs)
    assert mean == pytest.approx([1.0, 0.5, 0.0])
    assert std[1] == pytest.approx(float(torch.tensor([0.0] * 16 + [1.0] * 16).std()))
    data = generate_portraits(4, 32, seed=0)
    torch.manual_seed(0)
    ds = SegDataset(data.images, data.masks, train_transform(64, [0.5] * 3, [0.25] * 3))
    x, y = ds[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and y.shape == (64, 64) and y.dtype == torch.long
    assert set(y.unique().tolist()) <= {0, 1}
    torch.manual_seed(0)
    x2, y2 = ds[0]
    assert torch.equal(x, x2) and torch.equal(y, y2)  # augmentation is a function of torch's RNG
    xe, ye = SegDataset(data.images, data.masks, eval_transform(32, [0.5] * 3, [0.25] * 3))[1]
    assert torch.allclose(xe, (data.images[1].float() / 255 - 0.5) / 0.25, atol=1e-6)
    assert torch.equal(ye, data.masks[1].long())


def test_affine_padding_is_gray_and_background():
    img = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    mask = torch.ones(1, 32, 32, dtype=torch.uint8)
    t = train_transform(32, [0.0] * 3, [1.0] * 3, rotation=0, scale=(0.5, 0.5), shift=0.0,
                        p_color=0, p_blur=0, p_noise=0)
    x, y = SegDataset(img, mask, t)[0]
    assert x[:, 0, 0].tolist() == pytest.approx([128 / 255] * 3) and y[0, 0] == 0 and y[16, 16] == 1
    assert int(y.sum()) == 16 * 16


def test_portrait_cropper_window():
    image = torch.zeros(3, 100, 100, dtype=torch.uint8)
    mask = torch.zeros(100, 100, dtype=torch.uint8)
    mask[40:60, 40:60] = 1
    crop = PortraitCropper(size=40, width_faces=(2.0, 2.0), top_faces=(0.5, 0.5))
    left, top, side = crop.window((40, 40, 60, 60), np.random.default_rng(0))
    assert (left, top, side) == (30.0, 30.0, 40.0)
    img, m = crop(image, mask, (40, 40, 60, 60))
    assert m.shape == (40, 40) and int(m.sum()) == 400 and m[10:30, 10:30].all()
    img, m = crop(image, mask, (0, 0, 20, 20))  # window partly outside: gray 128 and background
    assert img[:, 0, 0].tolist() == [128, 128, 128] and m[0, 0] == 0
    with pytest.raises(DataError, match="has no area"):
        crop(image, mask, (5, 5, 5, 9))


def test_portrait_crops_from_full_body_scenes():
    scenes = generate_portraits(3, 96, seed=1, framing="full_body")
    crops = portrait_crops(scenes, 48, seed=0)
    assert crops.images.shape == (3, 3, 48, 48)
    # the person fills far more of a crop than of the wide scene
    assert crops.masks.float().mean() > 1.5 * scenes.masks.float().mean()
