import numpy as np
import pytest
import torch

from reprozoo.errors import DataError, UnknownNameError
from reprozoo.rainbow.augment import ShiftCutoutNoise, TrainAugment, cutmix, make_perturbation
from reprozoo.rainbow.data import cifar_data, digits_data, folder_data, load_data


def test_cutmix_recomputes_lambda_from_the_clipped_box():
    n, side = 6, 10
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, side, side).clone()
    y = torch.arange(n)
    gen = torch.Generator().manual_seed(0)
    partial = 0
    for _ in range(30):
        mixed, soft = cutmix(x, y, n, gen)
        assert soft.shape == (n, n) and torch.allclose(soft.sum(1), torch.ones(n))
        for i in range(n):
            classes = soft[i].nonzero().flatten().tolist()
            assert set(mixed[i].unique().long().tolist()) == set(classes)
            for c in classes:  # each label's weight is exactly its pixel share: lambda from the clipped box
                assert soft[i, c].item() == pytest.approx((mixed[i] == c).float().mean().item(), abs=1e-6)
            partial += len(classes) == 2
    assert partial > 0  # some boxes were pasted


def test_augmentations_leave_the_global_rng_alone_and_follow_their_generator():
    x = torch.rand(6, 3, 8, 8)
    y = torch.arange(6) % 3
    calls = {
        "train_autoaugment": lambda g: TrainAugment(crop_pad=2, hflip=True, policy="autoaugment")(x, g),
        "train_randaugment": lambda g: TrainAugment(policy="randaugment")(x, g),
        "cutmix": lambda g: torch.cat([t.flatten() for t in cutmix(x, y, 3, g)]),
        "perturb_randaugment": lambda g: make_perturbation("randaugment")(x, g),
        "perturb_shift": lambda g: make_perturbation("shift_cutout_noise")(x, g),
    }
    for name, call in calls.items():
        torch.manual_seed(123)
        state = torch.get_rng_state()
        a = call(torch.Generator().manual_seed(7))
        assert torch.equal(torch.get_rng_state(), state), name  # the global stream is untouched
        b = call(torch.Generator().manual_seed(7))
        c = call(torch.Generator().manual_seed(8))
        assert torch.equal(a, b), name  # same generator seed -> same output
        assert not torch.equal(a, c), name


def test_shift_only_moves_a_pixel_by_at_most_one():
    x = torch.zeros(50, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0
    out = ShiftCutoutNoise(shift=1, p_cutout=0, p_noise=0)(x, torch.Generator().manual_seed(0))
    assert out.sum().item() == 50
    pos = out.view(50, 64).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert rows.sub(4).abs().max() <= 1 and cols.sub(4).abs().max() <= 1
    assert len(set(pos.tolist())) > 3  # different samples get different shifts


def test_cutout_and_noise_stay_in_range():
    x = torch.ones(20, 1, 8, 8)
    out = ShiftCutoutNoise(shift=0, p_cutout=1.0, p_noise=0)(x, torch.Generator().manual_seed(1))
    zeros = (out == 0).view(20, -1).sum(1)
    assert set(zeros.tolist()) <= {4, 9, 16}  # a 2x2, 3x3 or 4x4 box
    noisy = ShiftCutoutNoise(shift=0, p_cutout=0, p_noise=1.0)(x * 0.5, torch.Generator().manual_seed(1))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x * 0.5)


def test_torchvision_policies_run_on_batches():
    x = torch.rand(4, 3, 8, 8)
    for policy in ("autoaugment", "randaugment"):
        out = TrainAugment(crop_pad=1, hflip=True, policy=policy)(x, torch.Generator().manual_seed(0))
        assert out.shape == x.shape and out.dtype == torch.float32 and not torch.equal(out, x)
        assert make_perturbation(policy)(x, torch.Generator().manual_seed(0)).shape == x.shape
    assert not TrainAugment().active
    with pytest.raises(UnknownNameError, match="unknown perturbation 'blur'"):
        make_perturbation("blur")


def test_digits_split_and_unknown_dataset():
    d = digits_data(0)
    assert len(d.y_train) + len(d.y_test) == 1797 and d.num_classes == 10
    assert abs(len(d.y_test) - 0.25 * 1797) <= 10
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist2'"):
        load_data("mnist2")


def test_cifar_missing_says_where_to_put_files(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py exists .*never downloads"):
        cifar_data("cifar10", tmp_path)


def test_image_folder_fixture(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                arr = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / split / cls / f"{i}.png")
    d = folder_data(tmp_path, image_size=8)
    assert d.x_train.shape == (6, 3, 8, 8) and d.x_train.dtype == torch.uint8
    assert sorted(d.y_train.tolist()) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DataError, match="needs data_root"):
        load_data("folder")
