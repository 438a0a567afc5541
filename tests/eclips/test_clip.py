"""The CLIP image-encoder path (open_clip, random init, tiny towers; nothing is downloaded)."""

import sys

import pytest
import torch

from reprozoo.eclips.models import BaseLearner, Ensemble, clip_visual_encoder
from reprozoo.errors import CheckpointError, ConfigError, MissingDependencyError
from reprozoo.runtime.profile import count_params

torch.set_num_threads(1)

TINY = {"width": 32, "layers": 2, "patch_size": 8, "head_width": 16}  # 2 heads, 16 tokens at 32x32


def test_missing_open_clip_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'reprozoo\[clip\]'"):
        clip_visual_encoder("ViT-B-16")


def _tiny(**kw):
    return clip_visual_encoder("ViT-B-16", image_size=32, vision_cfg=TINY, **kw)


def test_tiny_clip_tower_shapes_and_params():
    pytest.importorskip("open_clip")
    torch.manual_seed(0)
    enc = _tiny()
    assert type(enc.model).__name__ == "VisionTransformer" and enc.model.proj is None
    assert enc.num_features == 32
    # conv1 3*8*8*32 + class token 32 + positions 17*32 + ln_pre 64
    # + 2 blocks x (ln 64 + qkv 32*96+96 + out 32*32+32 + ln 64 + fc 32*128+128 + proj 128*32+32) + ln_post 64
    assert count_params(enc) == 6144 + 32 + 544 + 64 + 2 * 12_704 + 64 == 32_256
    enc.eval()
    assert enc(torch.randn(3, 3, 32, 32)).shape == (3, 32)
    learner = BaseLearner(enc, embed_dim=16).eval()
    assert learner(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    ens = Ensemble([BaseLearner(_tiny(), embed_dim=8) for _ in range(2)]).eval()
    logp = ens(torch.randn(2, 3, 32, 32))
    assert logp.shape == (2, 2) and torch.allclose(logp.exp().sum(1), torch.ones(2))


def test_clip_checkpoint_round_trip(tmp_path):
    pytest.importorskip("open_clip")
    torch.manual_seed(1)
    a = _tiny().eval()
    torch.manual_seed(2)
    assert not torch.equal(_tiny().model.conv1.weight, a.model.conv1.weight)  # random init differs
    x = torch.randn(2, 3, 32, 32)
    # 1) a state dict of the image tower alone
    torch.save(a.model.state_dict(), tmp_path / "tower.pt")
    b = _tiny(checkpoint_path=tmp_path / "tower.pt").eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    # 2) a whole open_clip checkpoint: visual.* keys (with CLIP's projection, which is dropped), text
    #    tower keys, wrapped in "state_dict" with a DataParallel "module." prefix
    full = {f"module.visual.{k}": v for k, v in a.model.state_dict().items()}
    full["module.visual.proj"] = torch.randn(32, 512)
    full["module.token_embedding.weight"] = torch.randn(10, 8)
    torch.save({"epoch": 3, "state_dict": full}, tmp_path / "clip.pt")
    c = _tiny(checkpoint_path=str(tmp_path / "clip.pt")).eval()
    with torch.no_grad():
        assert torch.equal(a(x), c(x))


def test_clip_wrong_checkpoint_errors(tmp_path):
    pytest.importorskip("open_clip")
    torch.save(_tiny().model.state_dict(), tmp_path / "w32.pt")
    with pytest.raises(CheckpointError, match=r"does not match the image tower of 'ViT-B-16' \(shape of"):
        clip_visual_encoder("ViT-B-16", image_size=32, vision_cfg={**TINY, "width": 48},
                            checkpoint_path=tmp_path / "w32.pt")
    with pytest.raises(CheckpointError, match=r"\(missing \['transformer.resblocks.2"):
        clip_visual_encoder("ViT-B-16", image_size=32, vision_cfg={**TINY, "layers": 3},
                            checkpoint_path=tmp_path / "w32.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        _tiny(checkpoint_path=tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch state dict"):
        _tiny(checkpoint_path=tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="unknown open_clip model 'ViT-Q-99'"):
        clip_visual_encoder("ViT-Q-99")
    with pytest.raises(ConfigError, match="unknown vision_cfg key 'depth'"):
        clip_visual_encoder("ViT-B-16", vision_cfg={"depth": 2})


def test_clip_vit_b16_is_the_papers_width():
    pytest.importorskip("open_clip")
    enc = clip_visual_encoder("ViT-B-16")  # random init, 224x224 tower, CLIP projection removed
    assert enc.num_features == 768
    assert count_params(enc) == 85_799_424  # CLIP ViT-B/16 image tower without its 768x512 projection
