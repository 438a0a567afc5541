import pytest
import torch
from torch import nn

from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.pflayer import (
    EffLayer,
    PfResNet,
    load_pretrained,
    make_spatial_op,
    save_pretrained,
    spatial_ops,
    study_net,
)
from reprozoo.pflayer.vit import ViTMax
from reprozoo.runtime.profile import count_macs, count_params
from reprozoo.runtime.registry import create_model, list_models

# exact parameter counts (1000 classes) and MACs at 224x224 (convs + linears + attention matmuls);
# the paper's tables round these to 25.6M/4.1G, 14.2M/2.2G, 17.3M/2.6G, ...
EXACT = {
    "resnet50_pf": (25_557_032, 4_089_184_256),
    "r50_max": (14_232_232, 2_239_496_192),
    "r50_hybrid": (17_330_600, 2_586_312_704),
    "vit_ti_max": (6_159_400, 1_244_757_504),
    "vit_s_max": (23_819_368, 4_743_822_336),
    "vit_b_max": (93_644_008, 18_504_873_984),
    "vit_s_attn": (22_049_896, 4_574_026_752),
    "pit_ti_max": (5_174_504, 631_512_960),
    "pit_s_max": (25_119_784, 2_813_372_640),
    "pit_b_max": (79_005_928, 12_428_636_160),
}
# the rounded values (params in M, MACs in G) computed from the released model definitions
ROUNDED = {"resnet50_pf": (25.56, 4.09), "r50_max": (14.23, 2.24), "r50_hybrid": (17.33, 2.59),
           "vit_ti_max": (6.16, 1.24), "vit_s_max": (23.82, 4.74), "vit_b_max": (93.6, 18.5),
           "vit_s_attn": (22.05, 4.57), "pit_ti_max": (5.17, 0.63), "pit_s_max": (25.12, 2.81),
           "pit_b_max": (79.0, 12.4)}


@pytest.mark.parametrize("name", list(EXACT))
def test_params_and_macs_at_224(name):
    with torch.device("meta"):
        model = create_model(name)
        macs = count_macs(model, torch.empty(1, 3, 224, 224))
    params = count_params(model)
    assert (params, macs) == EXACT[name]
    p_m, m_g = ROUNDED[name]
    digits = 2 if p_m < 50 else 1
    assert round(params / 1e6, digits) == p_m and round(macs / 1e9, 2 if m_g < 10 else 1) == m_g


def test_registry_lists_every_model():
    assert set(EXACT) <= set(list_models("*"))


def test_r50_equals_torchvision_resnet50():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    theirs = tv.models.resnet50().eval()
    ours = create_model("resnet50_pf").eval()
    assert count_params(ours) == count_params(theirs)
    load_pretrained(ours, theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def _official_resnet_keys(model: PfResNet) -> dict[str, torch.Tensor]:
    """Our weights under the official resnet_pf.py names (built from the model structure)."""
    out = {"conv1.0.weight": model.stem.conv.weight}
    for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        out[f"conv1.1.{k}"] = getattr(model.stem.bn, k)
    for s, stage in enumerate(model.stages, start=1):
        for i, block in enumerate(stage):
            pre = f"layer{s}.{i}."
            mods = {"reduction_block": block.reduce, "expansion_block": block.expand}
            if block.downsample is not None:
                mods["downsample"] = block.downsample
            for name, m in mods.items():
                out[f"{pre}{name}.0.weight"] = m.conv.weight
                for k in ("weight", "bias", "running_mean", "running_var"):
                    out[f"{pre}{name}.1.{k}"] = getattr(m.bn, k)
            if hasattr(block.spatial, "conv"):  # 3x3 conv, or the hybrid's avg-pool + conv at index 1
                sub = "conv_block.1." if hasattr(block.spatial, "pool") else "conv_block."
                out[f"{pre}{sub}0.weight"] = block.spatial.conv.weight
                for k in ("weight", "bias", "running_mean", "running_var"):
                    out[f"{pre}{sub}1.{k}"] = getattr(block.spatial.bn, k)
    out["fc.weight"], out["fc.bias"] = model.fc.weight, model.fc.bias
    return {k: v.detach().clone() for k, v in out.items()}


@pytest.mark.parametrize("name", ["r50_hybrid", "r50_max"])
def test_official_resnet_layout_loads_bit_identically(name):
    torch.manual_seed(1)
    src = create_model(name, layers=(1, 1, 1, 1), width_mult=0.25, num_classes=7)
    for m in src.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    dst = create_model(name, layers=(1, 1, 1, 1), width_mult=0.25, num_classes=7)
    load_pretrained(dst, {"state_dict": _official_resnet_keys(src)})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(src.eval()(x), dst.eval()(x))


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    r50 = create_model("resnet50_pf", layers=(1, 1, 1, 1), width_mult=0.25)
    path = save_pretrained(r50, tmp_path / "r50.safetensors")
    mx = create_model("r50_max", layers=(1, 1, 1, 1), width_mult=0.25)
    before = {k: v.clone() for k, v in mx.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"spatial op 'maxpool'.*unexpected key\(s\): layer1\.0\.spatial"):
        load_pretrained(mx, path)
    assert all(torch.equal(before[k], v) for k, v in mx.state_dict().items())  # nothing loaded
    wide = create_model("resnet50_pf", layers=(1, 1, 1, 1), width_mult=0.5)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_pretrained(wide, path)
    with pytest.raises(CheckpointError, match="missing key"):
        load_pretrained(create_model("resnet50_pf", layers=(1, 1, 2, 1), width_mult=0.25), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(r50, tmp_path / "nope.pth")
    same = load_pretrained(create_model("resnet50_pf", layers=(1, 1, 1, 1), width_mult=0.25), path)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), r50.state_dict().values()))


def test_official_vit_and_pit_layouts_load():
    torch.manual_seed(2)
    vit = ViTMax(img_size=32, patch_size=8, embed_dim=24, depth=4, num_heads=2, num_classes=3).eval()
    official = {}
    for k, v in vit.state_dict().items():  # the official file names the EffLayer linears qkv / proj
        official[k.replace("attn.fc1.", "attn.qkv.").replace("attn.fc2.", "attn.proj.")] = v.clone()
    assert "blocks.1.attn.qkv.weight" in official and official["blocks.1.attn.qkv.weight"].shape == (72, 24)
    copy = ViTMax(img_size=32, patch_size=8, embed_dim=24, depth=4, num_heads=2, num_classes=3).eval()
    load_pretrained(copy, official)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(vit(x), copy(x))
    pit = create_model("pit_ti_max", num_classes=4, depth=(2, 2, 2)).eval()
    theirs = {k.replace("stages.", "transformers.").replace("attn.fc1.", "attn.qkv.").replace("attn.fc2.", "attn.proj."):
              v.clone() for k, v in pit.state_dict().items()}
    mine = load_pretrained(create_model("pit_ti_max", num_classes=4, depth=(2, 2, 2)).eval(), theirs)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(pit(x), mine(x))


def test_r50_structure():
    hyb = create_model("r50_hybrid")
    kinds = [type(b.spatial).__name__ for b in hyb.blocks]
    assert kinds.count("PoolConv") == 3 and kinds.count("MaxPool2d") == 13
    assert [i for i, k in enumerate(kinds) if k == "PoolConv"] == [3, 7, 13]  # first block of stages 2-4
    mx = create_model("r50_max")
    assert all(isinstance(b.spatial, nn.MaxPool2d) and b.spatial.stride in (1, 2) for b in mx.blocks)
    assert [b.spatial.stride for b in mx.blocks].count(2) == 3
    assert isinstance(mx.blocks[0].downsample.conv, nn.Conv2d)  # stage-1 block 0 changes 64 -> 256


@torch.no_grad()
def test_forward_shapes_features_only_and_width():
    m = create_model("r50_hybrid", num_classes=5, layers=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 3, 64, 64)
    assert m(x).shape == (1, 5) and m.forward_features(x).shape == (1, 2048, 2, 2)
    fo = create_model("r50_max", features_only=True, out_indices=(0, 2, 4), layers=(1, 1, 1, 1)).eval()
    assert [tuple(t.shape) for t in fo(x)] == [(1, 64, 32, 32), (1, 512, 8, 8), (1, 2048, 2, 2)]
    assert [f["reduction"] for f in fo.feature_info] == [2, 4, 8, 16, 32]
    half = create_model("r50_max", width_mult=0.5, layers=(2, 2, 2, 2))
    assert half.num_features == 1024 and len(half.blocks) == 8 and half.stem.conv.out_channels == 64
    vit = create_model("vit_ti_max", num_classes=0, features_only=True, out_indices=(3, -1)).eval()
    assert [tuple(t.shape) for t in vit(torch.randn(1, 3, 64, 64))] == [(1, 192, 4, 4), (1, 192, 4, 4)]
    pit = create_model("pit_ti_max", features_only=True).eval()  # position map resized 27x27 -> 7x7
    assert [tuple(t.shape) for t in pit(torch.randn(1, 3, 64, 64))] == [(1, 64, 7, 7), (1, 128, 4, 4),
                                                                       (1, 256, 2, 2)]
    v = create_model("vit_ti_max", num_classes=2).eval()
    assert v.mixers == ["attn", "max"] * 6 and v(torch.randn(1, 3, 48, 48)).shape == (1, 2)


@torch.no_grad()
def test_efflayer_is_linear_gelu_maxpool_gelu_linear():
    layer = EffLayer(4).eval()
    x = torch.randn(2, 9, 4)
    h = nn.functional.gelu(layer.fc1(x)).transpose(1, 2).reshape(2, 12, 3, 3)
    h = nn.functional.max_pool2d(h, 3, 1, 1).flatten(2).transpose(1, 2)
    assert torch.allclose(layer(x), layer.fc2(nn.functional.gelu(h)))
    assert count_params(layer) == 4 * 12 + 12 + 12 * 4 + 4  # hidden ratio 3, biases on
    with pytest.raises(DataError, match="10 tokens .not a perfect square"):
        layer(torch.randn(1, 10, 4))
    vit = create_model("vit_ti_max")
    with pytest.raises(DataError, match="not a perfect square"):
        vit(torch.randn(1, 3, 224, 160))


@torch.no_grad()
def test_spatial_ops_keep_shapes_and_param_counts():
    x = torch.randn(2, 8, 9, 9)
    params = {"conv3x3": 9 * 64 + 16, "depthwise": 9 * 8 + 16, "maxpool": 0, "avgpool": 0, "identity": 0,
              "hybrid": 0}
    for op in spatial_ops():
        for stride in (1, 2):
            m = make_spatial_op(op, 8, stride).eval()
            assert m(x).shape == (2, 8, 9 if stride == 1 else 5, 9 if stride == 1 else 5), (op, stride)
        assert count_params(make_spatial_op(op, 8, 1)) == params[op]
    assert count_params(make_spatial_op("hybrid", 8, 2)) == params["conv3x3"]
    assert torch.equal(make_spatial_op("identity", 8, 2)(x), x[:, :, ::2, ::2])
    assert torch.equal(make_spatial_op("maxpool", 8, 1)(x), nn.functional.max_pool2d(x, 3, 1, 1))


def test_study_nets_differ_only_in_the_spatial_op():
    nets = {op: study_net(op) for op in ("conv3x3", "depthwise", "maxpool", "identity")}
    base = {k: v.shape for k, v in nets["maxpool"].state_dict().items()}
    for op, net in nets.items():
        extra = {k for k in net.state_dict() if k not in base}
        assert all(".spatial." in k for k in extra), op
        assert all(net.state_dict()[k].shape == s for k, s in base.items())
    assert count_params(nets["maxpool"]) == count_params(nets["identity"]) == 32_602
    assert count_params(nets["depthwise"]) == 33_834 and count_params(nets["conv3x3"]) == 57_018


@pytest.mark.parametrize("kwargs, msg", [
    ({"spatial_op": "sepconv"}, "unknown spatial op 'sepconv'"), ({"width_mult": 0}, "width_mult must be"),
    ({"width_mult": -0.5}, "width_mult must be"), ({"num_classes": -1}, "num_classes"),
    ({"layers": (3, 4)}, "layers must list"), ({"stem": "big"}, "stem must be"),
    ({"block_ops": ["maxpool"]}, "block_ops needs one op per bottleneck"),
    ({"features_only": True, "out_indices": (7,)}, "out_indices"),
])
def test_bad_resnet_arguments(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        PfResNet(**kwargs)


def test_bad_transformer_arguments():
    with pytest.raises(ConfigError, match="unknown token mixer"):
        create_model("vit_s_max", mixer="conv")
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        ViTMax(embed_dim=10, num_heads=3)
    with pytest.raises(ConfigError, match="drop_path_rate"):
        create_model("pit_s_max", drop_path_rate=1.0)
