import pytest
import torch

from reprozoo.data.fas_synth import DEFAULT_DOMAINS, cached_fas, generate_fas, render_video
from reprozoo.errors import DataError


def test_layout_labels_and_names():
    v = generate_fas(DEFAULT_DOMAINS[:2], identities=[0, 7], n_frames=3, size=16, seed=0)
    assert v.frames.shape == (2 * 2 * 3 * 3, 3, 16, 16) and v.frames.dtype == torch.uint8
    assert v.n_videos == 12 and v.video_names[3] == "cam0/id007/live" and v.video_names[6] == "cam1/id000/live"
    assert v.label.tolist()[:9] == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert v.attack.tolist()[:9] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert set(v.domain.tolist()) == {0, 1} and v.domain_names == ["cam0", "cam1"]
    assert torch.equal(torch.bincount(v.video), torch.full((12,), 3))
    assert v.first_frames(2).frames.shape[0] == 24


def test_deterministic_and_seeded():
    a = generate_fas(DEFAULT_DOMAINS[:1], identities=[3], n_frames=4, size=16, seed=0)
    b = generate_fas(DEFAULT_DOMAINS[:1], identities=[3], n_frames=4, size=16, seed=0)
    c = generate_fas(DEFAULT_DOMAINS[:1], identities=[3], n_frames=4, size=16, seed=1)
    assert torch.equal(a.frames, b.frames) and not torch.equal(a.frames, c.frames)
    # a video does not depend on which other videos are generated with it
    alone = (render_video(3, "replay", DEFAULT_DOMAINS[0], n_frames=4, size=16) * 255).round().to(torch.uint8)
    assert torch.equal(alone, a.frames[a.video == 2])


def test_frames_move_and_attacks_differ_from_live():
    v = generate_fas(DEFAULT_DOMAINS[:1], identities=[5], n_frames=4, size=32, seed=0)
    live = v.frames[v.attack == 0].float()
    assert (live[0] - live[1]).abs().mean() > 1.0  # head motion, flicker and noise between frames
    prints = v.frames[v.attack == 1].float()
    assert prints.std() < live.std()  # contrast squeezed into [0.15, 0.85]


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROZOO_CACHE", str(tmp_path))
    a = cached_fas(DEFAULT_DOMAINS[:1], identities=[1], n_frames=2, size=16)
    assert len(list((tmp_path / "fas_synth").glob("*.pt"))) == 1
    b = cached_fas(DEFAULT_DOMAINS[:1], identities=[1], n_frames=2, size=16)
    assert torch.equal(a.frames, b.frames) and a.video_names == b.video_names


def test_bad_arguments():
    with pytest.raises(DataError, match="identity must be"):
        generate_fas(DEFAULT_DOMAINS[:1], identities=[100], n_frames=2, size=16)
    with pytest.raises(DataError, match="n_frames"):
        generate_fas(n_frames=0)
    with pytest.raises(DataError, match="kind must be"):
        render_video(0, "mask", DEFAULT_DOMAINS[0])
