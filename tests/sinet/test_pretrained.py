"""The official-checkpoint loader, the official chnn widths and the bundled EG1800 weights
(create_model, Segmenter, `reprozoo segment` without --checkpoint, ONNX export)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reprozoo import create_model
from reprozoo.cli import main
from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.runtime.checkpoint import read_state_dict
from reprozoo.sinet import SINet, SINetEncoder
from reprozoo.sinet.inference import Segmenter
from reprozoo.sinet.official import (
    OFFICIAL_MEAN,
    OFFICIAL_STD,
    WEIGHTS,
    convert_official_checkpoint,
    from_official_state_dict,
    load_official,
    load_official_sinet,
    load_pretrained,
    official_config,
    official_key,
    official_key_map,
    pretrained_net,
    to_official_state_dict,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sinet"
GOLDEN = json.loads((FIXTURES / "golden.json").read_text())


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("chnn", [1, 2, 3])
def test_chnn_widths_and_parameter_counts_are_the_official_ones(chnn):
    gold = GOLDEN["chnn_widths"][str(chnn)]
    model = SINet(chnn=chnn)
    enc = model.encoder
    assert enc.level2[0].br[0].num_features == gold["level2 width"] == 48 + 4 * (chnn - 1)
    assert enc.level3_0.pw[0].out_channels == gold["level3_0 out"] == 48 + 4 * (chnn - 1)
    assert enc.level3[0].reduce.in_channels == gold["level3_0 out"]
    assert enc.level3[-1].br[0].num_features == gold["level3 width"] == 96 + 4 * (chnn - 1)
    assert enc.classifier.in_channels == gold["level3_0 out"] + gold["level3 width"]
    assert model.skip[0].in_channels == gold["level2 width"]
    assert n_params(model) == gold["params"]  # 86,910 / 94,098 / 101,582
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_chnn_must_be_a_positive_integer():
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="chnn must be an integer"):
            SINet(chnn=bad)


def test_key_map_is_one_to_one_onto_the_official_keys():
    official = read_state_dict(FIXTURES / "SINet.pth")
    mapping = official_key_map(SINet())
    assert len(mapping) == len(official) == 393 and set(mapping.values()) == set(official)
    assert official_key("encoder.level2.0.branch_a.dw.weight") == "encoder.level2.0.d1.conv.0.weight"
    assert official_key("encoder.level3_0.se.fc.3.weight") == "encoder.level3_0.conv.1.dense.3.weight"
    assert official_key("head.weight") == "classifier.1.weight"
    # the encoder alone (official Enc_SINet): same names without the prefix
    assert official_key_map(SINetEncoder())["level3.7.br.1.weight"] == "level3.7.BR.act.weight"


def test_official_loader_is_strict_and_reads_the_configuration(tmp_path):
    official = read_state_dict(FIXTURES / "SINet.pth")
    assert official_config(official) == {"num_classes": 2, "chnn": 1, "encoder_only": False}
    missing = {k: v for k, v in official.items() if k != "level2_C.conv.weight"}
    model = SINet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): skip.0.weight"):
        load_official(model, missing)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing was loaded
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\): extra.weight"):
        load_official(SINet(), {**official, "extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_official(SINet(chnn=2), official)
    # the stored configuration is read back: a chnn=3 encoder-only model round-trips
    enc = SINetEncoder(chnn=3).eval()
    torch.save(to_official_state_dict(enc), tmp_path / "enc.pth")
    again = load_official_sinet(tmp_path / "enc.pth")
    assert isinstance(again, SINetEncoder) and n_params(again) == n_params(enc)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), enc(x))


def test_rgb_input_reverses_only_the_first_convolution():
    official = read_state_dict(FIXTURES / "SINet.pth")
    rgb = from_official_state_dict(SINet(), official)
    bgr = from_official_state_dict(SINet(), official, rgb_input=False)
    first = "encoder.level1.0.weight"
    assert torch.equal(rgb[first], official["encoder.level1.conv.weight"][:, [2, 1, 0]])
    assert all(torch.equal(rgb[k], bgr[k]) for k in rgb if k != first)


def test_bundled_weights_are_the_released_checkpoint(tmp_path):
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 500_000
    bundled = read_state_dict(WEIGHTS)
    converted = convert_official_checkpoint(FIXTURES / "SINet.pth", tmp_path / "w.safetensors")
    again = read_state_dict(converted)
    assert bundled.keys() == again.keys() and all(torch.equal(bundled[k], again[k]) for k in bundled)
    assert all(v.dtype == torch.float32 for v in bundled.values() if v.is_floating_point())
    assert n_params(load_pretrained()) == 86_910
    notice = (WEIGHTS.parent / "NOTICE").read_text()
    assert "Permission is hereby granted, free of charge" in notice
    assert "Copyright (c) 2019-present NAVER Corp." in notice and "ext_portrait_segmentation" in notice


def test_create_model_pretrained_and_checkpoint_path(tmp_path):
    model = create_model("sinet", pretrained=True)
    assert not model.training and model.pretrained_cfg["mean"] == OFFICIAL_MEAN
    assert model.pretrained_cfg["std"] == OFFICIAL_STD and model.pretrained_cfg["image_size"] == 224
    ref = load_official_sinet(FIXTURES / "SINet.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))
    # checkpoint_path: the official layout and ours give the same model
    from_official = create_model("sinet", checkpoint_path=FIXTURES / "SINet.pth")
    from_ours = create_model("sinet", checkpoint_path=WEIGHTS)
    for other in (from_official, from_ours):
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        create_model("sinet", pretrained=True, chnn=2)
    with pytest.raises(ConfigError, match="has no pretrained weights"):
        create_model("sinet_encoder", pretrained=True)


def read_mask(path):
    return np.asarray(Image.open(path).convert("L")) > 127


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_segment_without_checkpoint_finds_the_astronaut(tmp_path):
    """`reprozoo segment` with the bundled weights against a person mask drawn by hand (polygons
    checked on an overlay; the held helmet is not person). Measured IoU 0.91."""
    from skimage.data import astronaut

    Image.fromarray(astronaut()).save(tmp_path / "astronaut.png")
    assert main(["segment", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "out")]) == 0
    pred = read_mask(tmp_path / "out" / "astronaut_mask.png")
    hand = read_mask(FIXTURES / "astronaut_person_mask.png")
    assert pred.shape == hand.shape == (512, 512)
    assert iou(pred, hand) >= 0.8
    assert pred[:40, 400:].mean() < 0.05 and pred[200:300, 100:250].mean() > 0.95  # wall out, suit in


def test_segmenter_pretrained_stretches_like_the_official_code():
    seg = Segmenter.pretrained()
    assert seg.fit == "stretch" and seg.image_size == 224 and seg.synthetic is False
    from skimage.data import astronaut

    wide = astronaut()[100:356]  # 256 x 512: resized to 224 x 224 without keeping the aspect ratio
    prob = seg.probability(wide)
    assert prob.shape == (256, 512) and 0.2 < float((prob > 0.5).float().mean()) < 0.8
    plain = Segmenter.pretrained(deploy=False).probability(wide)
    assert (prob - plain).abs().max() < 1e-4


def test_onnx_deployment_export_of_the_pretrained_model_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from skimage.data import astronaut

    from reprozoo.sinet.export import deploy_session, export_deploy_onnx

    net = pretrained_net()
    photo = torch.from_numpy(astronaut()).permute(2, 0, 1)[None].float() / 255
    x = torch.cat([torch.nn.functional.interpolate(photo, size=(224, 224), mode="bilinear", antialias=True),
                   torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))])
    path, _ = export_deploy_onnx(net, tmp_path / "sinet.onnx", x[:1], dynamic_batch=True, threads=1)
    out = deploy_session(path, threads=1).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = net(x)
    diff = float(np.abs(out - ref.numpy()).max())
    assert diff <= 1e-4 * float(ref.abs().max())  # measured 8.1e-6 (logits up to ~10)
    flipped = out.argmax(1) != ref.argmax(1).numpy()
    assert not (flipped & (np.abs(ref[:, 1] - ref[:, 0]).numpy() >= 1e-3)).any()


def test_export_cli_without_checkpoint_uses_the_bundled_weights(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "sinet.onnx"
    assert main(["export", "sinet", "--onnx", str(out), "--size", "64", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "input 'image' 1x3x64x64 RGB in [0,1]" in text
    diff = float(text.rsplit("=", 1)[1])
    assert diff <= 1e-4
