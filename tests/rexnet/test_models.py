import pytest
import torch
from torchvision.ops import StochasticDepth

from reprozoo.errors import ConfigError
from reprozoo.rexnet import ReXNet, lite_schedule, make_divisible, rexnet_schedule
from reprozoo.rexnet.blocks import LinearBottleneck
from reprozoo.runtime.profile import count_macs, count_params
from reprozoo.runtime.registry import create_model, list_models

# the paper's width-multiplier table: width -> (stem, 16 block outputs, pen, params [M], MACs [G])
SPEC = {
    0.9: (32, "16 26 36 46 56 67 77 87 97 107 117 127 138 148 158 168", 1152, 4.09, 0.348),
    1.0: (32, "16 27 38 50 61 72 84 95 106 117 128 140 151 162 174 185", 1280, 4.80, 0.398),
    1.3: (42, "21 35 50 65 79 94 109 123 138 152 167 182 196 211 226 240", 1664, 7.56, 0.662),
    1.5: (48, "24 41 58 75 92 108 125 142 159 176 193 210 226 243 260 277", 1920, 9.73, 0.876),
    2.0: (64, "32 54 77 100 122 144 167 190 212 234 257 280 302 324 347 370", 2560, 16.37, 1.529),
    2.2: (70, "35 60 85 109 134 159 184 208 233 258 283 307 332 357 382 406", 2816, 19.49, 1.843),
    3.0: (96, "48 82 116 149 183 217 250 284 318 352 386 419 453 487 520 554", 3840, 34.71, 3.396),
}
NAMES = {0.9: "rexnet_090", 1.0: "rexnet_100", 1.3: "rexnet_130", 1.5: "rexnet_150", 2.0: "rexnet_200",
         2.2: "rexnet_220", 3.0: "rexnet_300"}
# exact parameter counts (1000 classes). The five released checkpoints (timm's nav_in1k ports) have
# these counts; 0.9x / 2.2x / lite have no public checkpoint here and are pinned to our build.
EXACT_PARAMS = {"rexnet_090": 4_091_257, "rexnet_100": 4_796_873, "rexnet_130": 7_557_091,
                "rexnet_150": 9_728_593, "rexnet_200": 16_366_620, "rexnet_220": 19_485_308,
                "rexnet_300": 34_708_792, "rexnet_lite_100": 4_740_056, "rexnet_lite_130": 6_747_960,
                "rexnet_lite_150": 8_332_296, "rexnet_lite_200": 12_966_200}
LITE_SPEC = {"rexnet_lite_100": (4.74, 0.407), "rexnet_lite_130": (6.75, 0.646),
             "rexnet_lite_150": (8.33, 0.836), "rexnet_lite_200": (12.97, 1.498)}


def _meta(name):
    with torch.device("meta"):  # shapes only: MAC counting without allocating weights
        return create_model(name)


@pytest.mark.parametrize("width", list(SPEC))
def test_schedule_matches_spec_table(width):
    stem, outs, pen, _, _ = SPEC[width]
    s = rexnet_schedule(width)
    assert (s.stem_chs, s.out_channels, s.pen_chs) == (stem, [int(v) for v in outs.split()], pen)


def test_round_half_to_even_matters():
    outs = rexnet_schedule(1.0).out_channels
    assert (outs[2], outs[6], outs[10], outs[14]) == (38, 84, 128, 174)  # 38.5, 83.5, 128.5, 173.5


@pytest.mark.parametrize("width", list(SPEC))
def test_params_and_macs_match_spec(width):
    name = NAMES[width]
    _, _, _, params_m, macs_g = SPEC[width]
    n = count_params(create_model(name))
    assert n == EXACT_PARAMS[name]
    assert abs(n / 1e6 - params_m) <= 0.005  # spec prints 2 decimals
    macs = count_macs(_meta(name), torch.empty(1, 3, 224, 224, device="meta"))
    assert abs(macs / 1e9 - macs_g) <= 0.0005  # spec prints 3 decimals (convs + FC + SE, in MACs)


@pytest.mark.parametrize("name", list(LITE_SPEC))
def test_lite_params_and_macs(name):
    params_m, macs_g = LITE_SPEC[name]
    n = count_params(create_model(name))
    assert n == EXACT_PARAMS[name] and abs(n / 1e6 - params_m) <= 0.005
    macs = count_macs(_meta(name), torch.empty(1, 3, 224, 224, device="meta"))
    assert abs(macs / 1e9 - macs_g) <= 0.0005


def test_released_counts_equal_timm_ports():
    timm = pytest.importorskip("timm")
    for name in ("rexnet_100", "rexnet_130", "rexnet_150", "rexnet_200", "rexnet_300"):
        with torch.device("meta"):
            assert count_params(timm.create_model(name)) == EXACT_PARAMS[name]


def test_lite_schedule_and_make_divisible():
    assert make_divisible(27) == 32  # 24 would lose more than 10%
    assert make_divisible(38) == 40 and make_divisible(49) == 48 and make_divisible(3) == 8
    s = lite_schedule(1.0)
    assert s.out_channels == [16, 32, 40, 48, 64, 72, 80, 96, 104, 112, 128, 136, 144, 160, 168, 184]
    assert (s.stem_chs, s.pen_chs, lite_schedule(1.3).pen_chs) == (32, 1280, 1664)


def test_block_structure_1x():
    m = create_model("rexnet_100")
    blocks = list(m.blocks)
    assert [b.se is not None for b in blocks] == [False] * 3 + [True] * 13
    assert [b.use_shortcut for b in blocks] == [False, False, True, False, True, False, True, True, True, True,
                                                True, False, True, True, True, True]
    assert blocks[0].expand is None and blocks[1].dw.conv.out_channels == 96
    assert blocks[3].se.reduce.out_channels == 19  # 228 // 12, SE on the expanded width
    assert isinstance(blocks[5].expand.act, torch.nn.SiLU) and isinstance(blocks[5].post_act, torch.nn.ReLU6)
    assert isinstance(blocks[5].dw.act, torch.nn.Identity)
    lite = create_model("rexnet_lite_100")
    assert all(b.se is None and isinstance(b.dw.act, torch.nn.ReLU6) for b in lite.blocks)


@torch.no_grad()
def test_partial_shortcut_adds_to_first_channels_only():
    block = LinearBottleneck(4, 7, expansion=6, stride=1).eval()
    torch.nn.init.zeros_(block.project.bn.weight)
    torch.nn.init.zeros_(block.project.bn.bias)
    x = torch.randn(2, 4, 5, 5)
    y = block(x)
    assert torch.equal(y[:, :4], x) and torch.equal(y[:, 4:], torch.zeros(2, 3, 5, 5))
    assert not LinearBottleneck(8, 7, stride=1).use_shortcut and not LinearBottleneck(4, 7, stride=2).use_shortcut


def test_drop_path_only_on_shortcut_blocks_and_linear_in_index():
    m = create_model("rexnet_100", drop_path_rate=0.3)
    rates = [b.drop_path.p if isinstance(b.drop_path, StochasticDepth) else None for b in m.blocks]
    assert rates[1] is None and rates[3] is None and rates[0] is None  # no shortcut -> never dropped
    assert rates[2] == pytest.approx(0.3 * 2 / 15) and rates[15] == pytest.approx(0.3)
    dp = StochasticDepth(0.5, mode="row").train()
    torch.manual_seed(0)
    out = dp(torch.ones(2000, 3))
    assert set(out[:, 0].unique().tolist()) == {0.0, 2.0} and torch.equal(out[:, 0], out[:, 2])
    assert torch.equal(dp.eval()(torch.ones(4, 3)), torch.ones(4, 3))


@torch.no_grad()
def test_forward_shapes_features_and_head():
    m = create_model("rexnet_100", num_classes=10, in_chans=1).eval()
    x = torch.randn(2, 1, 64, 64)
    feats = m.forward_features(x)
    assert feats.shape == (2, 1280, 2, 2)
    assert m.forward_head(feats, pre_logits=True).shape == (2, 1280)
    assert torch.equal(m(x), m.forward_head(feats))
    assert m(x).shape == (2, 10)
    assert [(f["num_chs"], f["reduction"]) for f in m.feature_info] == [(16, 2), (38, 4), (61, 8), (128, 16),
                                                                         (185, 32)]
    fo = create_model("rexnet_100", features_only=True, out_indices=(1, 3, 4)).eval()
    maps = fo(torch.randn(1, 3, 64, 64))
    assert [tuple(t.shape) for t in maps] == [(1, 38, 16, 16), (1, 128, 4, 4), (1, 185, 2, 2)]
    lite = create_model("rexnet_lite_100", num_classes=3).eval()
    assert lite(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    m.reset_classifier(0)
    assert m(x).shape == (2, 1280)


def test_depth_mult_regrows_the_schedule():
    s = rexnet_schedule(1.0, depth_mult=2.0)
    assert len(s.blocks) == 32 and s.out_channels[-1] == round(16 + 31 * 180 / 32)
    assert [b.stride for b in s.blocks].count(2) == 4
    assert len(ReXNet(depth_mult=0.5, num_classes=2).blocks) == 10  # ceil(l / 2) = 1, 1, 1, 2, 2, 3


@pytest.mark.parametrize("kwargs, msg", [
    ({"width_mult": 0}, "width_mult must be in"), ({"width_mult": 9.0}, "width_mult must be in"),
    ({"width_mult": -1}, "width_mult must be in"), ({"num_classes": -1}, "num_classes must be"),
    ({"num_classes": 2.5}, "num_classes must be"), ({"in_chans": 0}, "in_chans"),
    ({"drop_rate": 1.0}, "drop_rate"), ({"depth_mult": 0}, "depth_mult"),
    ({"lite": True, "kernel_conf": "33"}, "kernel_conf"), ({"weight_init": "xavier"}, "weight_init"),
    ({"features_only": True, "out_indices": (5,)}, "out_indices"),
    ({"features_only": True, "out_indices": ()}, "non-empty subset"),
])
def test_bad_arguments_raise_config_error(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        ReXNet(**kwargs)


def test_registry_and_init():
    assert set(NAMES.values()) | set(LITE_SPEC) <= set(list_models("rexnet*"))
    torch.manual_seed(0)
    m = create_model("rexnet_100", weight_init="efficientnet")
    w = m.blocks[5].project.conv.weight  # fan_out = 72 -> std sqrt(2/72)
    assert abs(w.std().item() - (2 / 72) ** 0.5) < 0.01


@pytest.mark.parametrize("kwargs, size, classes", [({"width_mult": 1.3}, 224, 1000), ({"width_mult": 0.9}, 97, 10),
                                                   ({"lite": True, "kernel_conf": "355577"}, 224, 1000),
                                                   ({"depth_mult": 2.0}, 160, 5)])
def test_analytic_macs_equal_flop_counter(kwargs, size, classes):
    from reprozoo.rexnet import schedule_macs

    with torch.device("meta"):
        m = ReXNet(num_classes=classes, **kwargs)
        counted = count_macs(m, torch.empty(1, 3, size, size))
    assert schedule_macs(m.schedule, size, num_classes=classes, lite=m.lite) == counted


def test_custom_block_channels():
    chans = [16, 24, 24, 32, 32, 64, 64, 64, 96, 96, 96, 160, 160, 160, 160, 320]
    m = ReXNet(block_channels=chans, num_classes=0)
    assert m.schedule.out_channels == chans and m.blocks[15].use_shortcut
    with pytest.raises(ConfigError, match="block_channels needs 16 positive integers"):
        ReXNet(block_channels=chans[:-1])
    with pytest.raises(ConfigError, match="only supported for ReXNet v1"):
        ReXNet(block_channels=chans, lite=True)
