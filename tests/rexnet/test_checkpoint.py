import pytest
import torch
from torch import nn

from reprozoo.errors import CheckpointError
from reprozoo.rexnet import load_pretrained, to_native_state_dict
from reprozoo.runtime.registry import create_model
from tests.rexnet.official_layout import LITE_100, V1_100, OfficialLayout, randomise_bn

timm = pytest.importorskip("timm")


@torch.no_grad()
@pytest.mark.parametrize("name", ["rexnet_100", "rexnet_130"])
def test_timm_state_dict_gives_identical_logits(name):
    torch.manual_seed(0)
    theirs = timm.create_model(name, pretrained=False).eval()
    randomise_bn(theirs)
    ours = load_pretrained(create_model(name), theirs.state_dict()).eval()
    x = torch.randn(2, 3, 224 if name == "rexnet_100" else 96, 224 if name == "rexnet_100" else 96)
    assert torch.equal(ours(x), theirs(x))  # same ops in the same order: bit-identical


@torch.no_grad()
@pytest.mark.parametrize("table, name, lite", [(V1_100, "rexnet_100", False), (LITE_100, "rexnet_lite_100", True)])
def test_official_layout_gives_identical_logits(table, name, lite):
    torch.manual_seed(1)
    official = OfficialLayout(table, lite=lite).eval()
    randomise_bn(official)
    sd = official.state_dict()
    # spot-check the official key names the official module order implies
    assert sd["features.0.weight"].shape == (32, 3, 3, 3)
    assert sd["features.3.out.0.weight"].shape == (32, 1, 3, 3)  # block 0: t=1, depthwise first
    if lite:
        assert sd["output.4.weight"].shape == (1000, 1024, 1, 1)
    else:
        assert sd["features.6.out.5.fc.0.weight"].shape == (19, 228, 1, 1)  # block 3 SE: 228 // 12
        assert sd["features.20.weight"].shape == (1280,)  # pen BN
        assert sd["output.1.weight"].shape == (1000, 1280, 1, 1)
    ours = load_pretrained(create_model(name), sd).eval()
    x = torch.randn(2, 3, 128, 128)
    # official adds the shortcut in place and pools with AdaptiveAvgPool2d: equal up to float rounding
    assert (ours(x) - official(x)).abs().max().item() <= 1e-5


def test_files_and_wrappers(tmp_path):
    from safetensors.torch import save_file

    src = create_model("rexnet_lite_100", num_classes=7)
    randomise_bn(src)
    sd = src.state_dict()
    save_file(sd, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, tmp_path / "w.pth")
    x = torch.randn(1, 3, 64, 64)
    for f in ("w.safetensors", "w.pth"):
        dst = load_pretrained(create_model("rexnet_lite_100", num_classes=7), tmp_path / f).eval()
        assert torch.equal(dst(x), src.eval()(x))


def test_missing_unexpected_and_mismatched_keys_are_named():
    model = create_model("rexnet_100")
    sd = model.state_dict()
    broken = dict(sd)
    del broken["blocks.7.se.reduce.weight"]
    broken["blocks.7.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): blocks\.7\.se\.reduce\.weight; 1 unexpected key\(s\): "
                                              r"blocks\.7\.extra\.weight"):
        load_pretrained(model, broken)
    with pytest.raises(CheckpointError, match=r"shape mismatch\(es\): stem\.conv\.weight \(42, 3, 3, 3\) vs model "
                                              r"\(32, 3, 3, 3\)"):
        load_pretrained(model, create_model("rexnet_130").state_dict())
    before = model.stem.conv.weight.clone()
    with pytest.raises(CheckpointError):
        load_pretrained(model, {k: v for k, v in sd.items() if not k.startswith("head.")} | {"head.fc.weight": 0})
    assert torch.equal(model.stem.conv.weight, before)  # never a partial load


def test_drop_classifier_for_fine_tuning():
    src = create_model("rexnet_090")
    dst = load_pretrained(create_model("rexnet_090", num_classes=5), src.state_dict(), drop_classifier=True)
    assert torch.equal(dst.pen.conv.weight, src.pen.conv.weight)
    assert dst.head.fc.weight.shape == (5, 1152)


def test_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(create_model("rexnet_100"), tmp_path / "nope.pth")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_pretrained(create_model("rexnet_100"), tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_pretrained(create_model("rexnet_100"), tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="cannot tell the checkpoint layout"):
        load_pretrained(create_model("rexnet_100"), {"fc.weight": torch.zeros(1)})


def test_timm_key_renames():
    model = create_model("rexnet_100")
    names = to_native_state_dict(model, {"features.16.conv.weight": torch.zeros(1), "stem.conv.weight": torch.zeros(1),
                                         "features.4.se.fc1.bias": torch.zeros(1),
                                         "features.4.conv_exp.bn.running_var": torch.zeros(1)})
    assert set(names) == {"pen.conv.weight", "stem.conv.weight", "blocks.4.se.reduce.bias",
                          "blocks.4.expand.bn.running_var"}
    assert isinstance(model.head.fc, nn.Linear)


@pytest.mark.slow
@torch.no_grad()
@pytest.mark.parametrize("name", ["rexnet_150", "rexnet_200", "rexnet_300"])
def test_timm_wide_models_identical_at_224(name):
    theirs = timm.create_model(name, pretrained=False).eval()
    randomise_bn(theirs)
    ours = load_pretrained(create_model(name), theirs.state_dict()).eval()
    x = torch.randn(2, 3, 224, 224)
    assert torch.equal(ours(x), theirs(x))


def test_training_mode_loss_and_gradients_match_timm():
    torch.manual_seed(0)
    theirs = timm.create_model("rexnet_100", drop_rate=0.0).train()
    ours = load_pretrained(create_model("rexnet_100", drop_rate=0.0), theirs.state_dict()).train()
    x = torch.randn(2, 3, 64, 64)
    loss_t, loss_o = theirs(x).square().mean(), ours(x).square().mean()
    loss_t.backward()
    loss_o.backward()
    assert torch.equal(loss_t, loss_o)  # batch-statistics BN, in-place activations, concatenated shortcut
    assert torch.equal(theirs.stem.conv.weight.grad, ours.stem.conv.weight.grad)
    assert torch.equal(theirs.features[7].se.fc1.weight.grad, ours.blocks[7].se.reduce.weight.grad)
    assert torch.equal(theirs.features[15].conv_pwl.bn.running_var, ours.blocks[15].project.bn.running_var)
