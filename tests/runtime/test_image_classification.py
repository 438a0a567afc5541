"""The shared ImageNet-style trainer gives the same losses and weights as the two per-package loops it
replaced (rexnet: warm-up + cosine, decay on weights only, smoothed CE, drop_last; pflayer: warm-up +
step decay), spelled out here as they were, on a fixed tiny case."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.image_classification import (
    ImageRecipe,
    check_image_root,
    fit_classifier,
    image_folders,
    imagenet_transforms,
    write_tiny_imagefolder,
)
from reprozoo.runtime.trainer import TrainConfig, Trainer


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def _data():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(22, 3, 8, 8, generator=g), torch.randint(0, 3, (22,), generator=g)
    return TensorDataset(x[:16], y[:16]), TensorDataset(x[16:], y[16:])


def _old_loop(model, train, val, *, schedule, lr=0.1, wd=1e-3, warm_epochs=1, epochs=3, batch=4, smoothing=0.0,
              drop_last=False, step_epochs=2, gamma=0.1):
    """The loop both packages had before the shared module, written out."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}], lr=lr,
                          momentum=0.9)
    steps = math.ceil(len(train) / batch)
    warm, total = warm_epochs * steps, steps * epochs

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        if schedule == "step":
            return gamma ** (step // (step_epochs * steps))
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    def step_fn(m, b):
        logits = m(b[0])
        loss = nn.functional.cross_entropy(logits, b[1], label_smoothing=smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == b[1]).float().mean().item()}

    @torch.no_grad()
    def topk(m, loader, acc):
        c1 = c5 = n = 0.0
        for x, y in loader:
            logits, y = acc.gather_for_metrics((m(x), y))
            top = logits.topk(min(5, logits.shape[1]), 1).indices
            c1 += float((top[:, 0] == y).sum())
            c5 += float((top == y[:, None]).any(1).sum())
            n += y.numel()
        return {"val_top1": c1 / n, "val_top5": c5 / n}

    tc = TrainConfig(epochs=epochs, batch_size=batch, eval_batch_size=8, seed=3, device="cpu",
                     scheduler_interval="step", drop_last=drop_last, checkpoint_every=0)
    return Trainer(model, opt, train, tc, step_fn=step_fn, scheduler=torch.optim.lr_scheduler.LambdaLR(opt, factor),
                   val_data=val, eval_fn=topk, progress=False).fit()


@pytest.mark.parametrize("schedule, smoothing, drop_last", [("cosine", 0.1, True), ("step", 0.0, False)])
def test_shared_trainer_matches_the_loops_it_replaced(schedule, smoothing, drop_last):
    train, val = _data()
    old_model, new_model = _net(), _net()
    old = _old_loop(old_model, train, val, schedule=schedule, smoothing=smoothing, drop_last=drop_last)
    recipe = ImageRecipe(epochs=3, batch_size=4, eval_batch_size=8, lr=0.1, weight_decay=1e-3, warmup_epochs=1,
                         schedule=schedule, step_epochs=2, label_smoothing=smoothing, drop_last=drop_last, device="cpu")
    new = fit_classifier(new_model, train, val, recipe, seed=3)
    assert len(old) == len(new) == 3
    for a, b in zip(old, new):
        for key in ("train_loss", "train_acc", "val_top1", "val_top5", "lr"):
            assert a[key] == b[key], key
        assert math.isfinite(b["val_loss"])
    assert old[0]["train_loss"] != old[-1]["train_loss"]  # it trained
    for (k, a), b in zip(old_model.state_dict().items(), new_model.state_dict().values()):
        assert torch.equal(a, b), k


def test_recipe_and_folder_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="schedule must be one of cosine, step"):
        ImageRecipe(schedule="poly").validate()
    with pytest.raises(ConfigError, match="needs an ImageNet folder"):
        check_image_root("")
    with pytest.raises(DataError, match="train/<class>/<image>"):
        check_image_root(tmp_path)
    write_tiny_imagefolder(tmp_path / "d", classes=3, per_class=2, size=12)
    train, val, n = image_folders(tmp_path / "d", imagenet_transforms(8, True), imagenet_transforms(8, False))
    assert (len(train), len(val), n) == (6, 6, 3) and train[0][0].shape == (3, 8, 8)
    assert ImageRecipe(batch_size=4, max_steps_per_epoch=2).steps_per_epoch(22) == 2


def test_fit_classifier_refuses_a_run_and_names_a_changed_setting_on_resume(tmp_path):
    """The output-folder rule (runtime.fit_folder); the bit-exact resume is in tests/test_docs_training.py."""
    from reprozoo.errors import OutputExistsError

    train, val = _data()
    recipe = ImageRecipe(epochs=1, batch_size=8, lr=0.1, device="cpu")
    fit_classifier(_net(), train, val, recipe, out_dir=tmp_path / "run")
    with pytest.raises(OutputExistsError, match=r"already holds a training run \(checkpoints/last.pt\); pass "
                                                r"resume=True to continue it, or a new out_dir$") as info:
        fit_classifier(_net(), train, val, recipe, out_dir=tmp_path / "run")
    assert str(tmp_path / "run") in str(info.value) and "\n" not in str(info.value)
    for changed, name in [(ImageRecipe(epochs=2, batch_size=8, lr=0.1, device="cpu"), "epochs"),
                          (ImageRecipe(epochs=1, batch_size=8, lr=0.2, device="cpu"), "lr")]:
        with pytest.raises(ConfigError, match=rf"^resume=True but {name} differs from the run in "):
            fit_classifier(_net(), train, val, changed, out_dir=tmp_path / "run", resume=True)
    with pytest.raises(ConfigError, match="^resume=True but seed differs"):
        fit_classifier(_net(), train, val, recipe, seed=1, out_dir=tmp_path / "run", resume=True)
    # the device, the loader workers and the evaluation batch may change: the finished run is returned
    again = ImageRecipe(epochs=1, batch_size=8, lr=0.1, device="auto", eval_batch_size=3)
    assert len(fit_classifier(_net(), train, val, again, out_dir=tmp_path / "run", resume=True)) == 1
