import torch

from reprozoo.cli import main
from reprozoo.rexnet import load_pretrained
from reprozoo.runtime.checkpoint import load_checkpoint
from reprozoo.runtime.registry import create_model
from tests.rexnet.official_layout import V1_100, OfficialLayout


def test_info_prints_schedule_and_counts(capsys):
    assert main(["rexnet-info", "rexnet_130"]) == 0
    out = capsys.readouterr().out
    assert "stem 42, blocks 21 35 50" in out and "params 7,557,091" in out and "MACs@224 662,229,098" in out


def test_convert_official_checkpoint(tmp_path, capsys):
    official = OfficialLayout(V1_100, classes=10)
    torch.save(official.state_dict(), tmp_path / "official.pth")
    assert main(["rexnet-convert", "rexnet_100", str(tmp_path / "official.pth"), str(tmp_path / "ours.safetensors"),
                 "--num-classes", "10"]) == 0
    dst = tmp_path / "ours.safetensors"
    ours = create_model("rexnet_100", checkpoint_path=dst)  # the library's format: name and kwargs inside
    assert ours.num_classes == 10 and torch.equal(ours.head.fc.weight, official.output[1].weight.flatten(1))
    model, extra = load_checkpoint(dst)
    assert extra == {"source": "rexnet-convert"} and torch.equal(model.head.fc.weight, ours.head.fc.weight)
    again = load_pretrained(create_model("rexnet_100", num_classes=10), dst)  # the layout reader reads it too
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), ours.state_dict().values()))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(official.eval()(x).flatten(1), ours.eval()(x), rtol=1e-4, atol=1e-5)
    assert main(["rexnet-convert", "rexnet_130", str(tmp_path / "official.pth"), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: checkpoint does not fit this model (") and "shape mismatch" in err[0]
    assert not (tmp_path / "x.safetensors").exists()


def test_info_and_convert_refuse_non_rexnet_models(tmp_path, capsys):
    assert main(["rexnet-info", "sinet"]) == 2
    assert main(["rexnet-info", "rexnet_100", "--image-size", "0"]) == 2
    torch.save({}, tmp_path / "empty.pth")
    assert main(["rexnet-convert", "sinet", str(tmp_path / "empty.pth"), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: 'sinet' is not a ReXNet; use a ReXNet such as rexnet_100 or rexnet_lite_130 "
                   "(see `reprozoo list`)", "error: --image-size must be a positive number of pixels, got 0",
                   "error: 'sinet' is not a ReXNet; use a ReXNet such as rexnet_100 or rexnet_lite_130 "
                   "(see `reprozoo list`)"]
