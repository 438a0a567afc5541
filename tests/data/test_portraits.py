import pytest
import torch

from reprozoo.data.portraits import generate_portraits, render_portrait
from reprozoo.errors import DataError


def test_deterministic_per_seed_and_index():
    a = generate_portraits(4, 48, seed=3)
    b = generate_portraits(4, 48, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    tail = generate_portraits(2, 48, seed=3, start=2)
    assert torch.equal(tail.images, a.images[2:]) and torch.equal(tail.head_boxes, a.head_boxes[2:])
    other = generate_portraits(4, 48, seed=4)
    assert not torch.equal(other.images, a.images)


def test_images_masks_and_head_boxes():
    d = generate_portraits(8, 64, seed=0)
    assert d.images.dtype == torch.uint8 and d.images.shape == (8, 3, 64, 64)
    assert set(d.masks.unique().tolist()) == {0, 1}
    frac = d.masks.float().mean(dim=(1, 2))
    assert torch.all(frac > 0.1) and torch.all(frac < 0.8)
    assert torch.all(d.masks[:, -1].float().mean(1) > 0.2)  # shoulders run off the bottom edge
    for mask, (x0, y0, x1, y1) in zip(d.masks, d.head_boxes.tolist()):
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
        assert mask[cy, cx] == 1  # the head centre is foreground


def test_full_body_framing_is_smaller():
    p = generate_portraits(6, 64, seed=0)
    f = generate_portraits(6, 64, seed=0, framing="full_body")
    assert f.masks.float().mean() < 0.5 * p.masks.float().mean()


def test_bad_arguments():
    with pytest.raises(DataError, match="framing must be one of"):
        render_portrait(0, 0, 32, framing="landscape")
    with pytest.raises(DataError, match="hardness"):
        render_portrait(0, 0, 32, hardness=2.0)
    with pytest.raises(DataError, match="size must be"):
        render_portrait(0, 0, 4)
