import torch

from reprozoo.gmp.data import ToyConfig, make_split, make_world
from reprozoo.gmp.models import GMP, GrounderConfig
from reprozoo.gmp.training import FitConfig, evaluate, fit, warmup_inverse_sqrt


def test_warmup_then_inverse_square_root():
    f = warmup_inverse_sqrt(100, 1e-3)
    assert f(0) * 1e-3 == 1e-7 and abs(f(50) * 1e-3 - (1e-7 + (1e-3 - 1e-7) / 2)) < 1e-12
    assert f(100) == 1.0 and abs(f(400) - 0.5) < 1e-12


def test_fit_keeps_the_best_validation_epoch_and_evaluation_is_deterministic(tmp_path):
    torch.manual_seed(0)
    world = make_world(ToyConfig(), seed=0)
    train, val = make_split(world, 24, seed=1), make_split(world, 12, seed=2)
    cfg = GrounderConfig(vocab_size=len(world.vocab), word_dim=32, frame_dim=32, d_model=16, heads=2, layers=1,
                         ffn=16, grid=16, components=[1, 2], n_neg=2)
    model = GMP(cfg, torch.as_tensor(world.vocab.vectors))
    hist = fit(model, train, val, world.vocab, FitConfig(epochs=2, batch_size=12, warmup=2), out_dir=tmp_path,
               progress=False)
    assert [h["epoch"] for h in hist] == [1, 2] and all("val_R1@0.5" in h for h in hist)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["score"] == max(h["val_R1@0.5"] for h in hist)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in best["model"].items())
    a, pa = evaluate(model, val, world.vocab, batch_size=5)
    b, pb = evaluate(model, val, world.vocab, batch_size=12)  # another batching, same masks and numbers
    assert torch.allclose(pa["loss"], pb["loss"], atol=1e-5)
    assert all((a[k] == b[k]).all() for k in a if k != "iou") and abs(a["iou"] - b["iou"]).max() < 1e-5
    assert a["R1@0.5"].mean() == best["score"]


def _tiny_fit():
    world = make_world(ToyConfig(), seed=0)
    train, val = make_split(world, 16, seed=1), make_split(world, 8, seed=2)
    cfg = GrounderConfig(vocab_size=len(world.vocab), word_dim=32, frame_dim=32, d_model=8, heads=2, layers=1,
                         ffn=8, grid=16, components=[1, 2], n_neg=2)

    def model():
        torch.manual_seed(0)
        return GMP(cfg, torch.as_tensor(world.vocab.vectors))

    return model, train, val, world.vocab


def test_an_interrupted_fit_resumes_bit_for_bit_and_its_folder_follows_the_rule(tmp_path, trainer_epochs):
    import pytest

    from reprozoo.errors import ConfigError, OutputExistsError

    model, train, val, vocab = _tiny_fit()
    fc = FitConfig(epochs=3, batch_size=8, warmup=2)
    straight = model()
    full = fit(straight, train, val, vocab, fc, out_dir=tmp_path / "a", device="cpu", progress=False)
    trainer_epochs(stop_at=2)  # interrupted in the third epoch
    with pytest.raises(KeyboardInterrupt):
        fit(model(), train, val, vocab, fc, out_dir=tmp_path / "b", device="cpu", progress=False)
    trainer_epochs()  # no more interruptions
    with pytest.raises(OutputExistsError, match=r"b already holds a training run \(checkpoints/last.pt\); pass "
                                                "resume=True to continue it, or a new out_dir$"):
        fit(model(), train, val, vocab, fc, out_dir=tmp_path / "b", device="cpu", progress=False)
    with pytest.raises(ConfigError, match=r"^resume=True but warmup differs from the run in .*: 2 there, 3 now"):
        fit(model(), train, val, vocab, FitConfig(epochs=3, batch_size=8, warmup=3), out_dir=tmp_path / "b",
            resume=True, device="cpu", progress=False)
    torch.manual_seed(99)  # another global RNG state: the checkpoint restores the run's
    resumed = model()
    again = fit(resumed, train, val, vocab, fc, out_dir=tmp_path / "b", resume=True, device="cpu", progress=False)
    assert again == full and len(full) == 3
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k  # the best validation epoch of both runs
    # workdir, the former name of out_dir, still works (deprecated)
    with pytest.warns(DeprecationWarning, match="use out_dir"):
        fit(model(), train, val, vocab, FitConfig(epochs=1, batch_size=8, warmup=2, max_steps_per_epoch=1),
            workdir=tmp_path / "c", device="cpu", progress=False)
    assert (tmp_path / "c" / "checkpoints" / "last.pt").is_file()
