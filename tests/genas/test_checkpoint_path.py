import pytest
import torch

from reprozoo.errors import CheckpointError
from reprozoo.genas.official import reprozoo_to_official
from reprozoo.runtime.registry import create_model


def test_supernet_checkpoint_path_reads_the_official_layout(tmp_path):
    torch.manual_seed(0)
    ours = create_model("genas_darts_supernet", C=4, layers=3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in reprozoo_to_official(ours.state_dict()).items()}},
               tmp_path / "official.pth")
    loaded = create_model("genas_darts_supernet", C=4, layers=3, checkpoint_path=tmp_path / "official.pth")
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(CheckpointError, match="does not fit a GeNAS supernet with C=6, layers=3.*nothing was loaded"):
        create_model("genas_darts_supernet", C=6, layers=3, checkpoint_path=tmp_path / "official.pth")
