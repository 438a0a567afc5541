import numpy as np
import pytest
import torch
from torchvision.io import write_png

from reprozoo.data.fas_videos import load_item, read_frames, read_manifest, sample_indices, scan_folders
from reprozoo.errors import DataError


def _frames(folder, n, value=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_png(torch.full((3, 6, 8), value + i, dtype=torch.uint8), str(folder / f"f{i:03d}.png"))


def test_sample_indices():
    assert sample_indices(5, "all") == [0, 1, 2, 3, 4]
    assert sample_indices(9, "uniform:3") == [0, 4, 8]
    assert sample_indices(2, "uniform:16") == [0, 1]
    assert sample_indices(9, 3) == [0, 4, 8]
    with pytest.raises(DataError, match="uniform:M"):
        sample_indices(3, "first")


def test_folder_layout_and_frame_folders(tmp_path):
    _frames(tmp_path / "camA" / "live" / "v1", 4, 10)
    _frames(tmp_path / "camA" / "spoof" / "v2", 2, 50)
    _frames(tmp_path / "camB" / "attack" / "v1", 3)
    items = scan_folders(tmp_path)
    assert [(i.video_id, i.label, i.domain) for i in items] == [
        ("camA/live/v1", 1, "camA"), ("camA/spoof/v2", 0, "camA"), ("camB/attack/v1", 0, "camB")]
    x = load_item(items[0], "uniform:2")
    assert x.shape == (2, 3, 6, 8) and x[:, 0, 0, 0].tolist() == [10, 13]
    (tmp_path / "camB" / "unknown").mkdir()
    with pytest.raises(DataError, match="unknown label 'unknown'"):
        scan_folders(tmp_path)


def test_gif_video_file(tmp_path):
    import imageio.v3 as iio

    frames = np.stack([np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(3)])
    iio.imwrite(tmp_path / "clip.gif", frames)
    x = read_frames(tmp_path / "clip.gif")
    assert x.shape == (3, 3, 8, 8) and x.dtype == torch.uint8
    assert x[:, 0, 0, 0].tolist() == [0, 40, 80]


def test_manifest_groups_frames_by_explicit_video_id(tmp_path):
    _frames(tmp_path / "frames", 4)
    (tmp_path / "m.csv").write_text(
        "path,label,domain,video_id\n"
        "frames/f000.png,live,O,vidA\nframes/f001.png,live,O,vidA\n"
        "frames/f002.png,0,O,vidB\nframes/f003.png,live,O,vidA\n")
    items = read_manifest(tmp_path / "m.csv")
    assert [(i.video_id, i.label, len(i.paths)) for i in items] == [("vidA", 1, 3), ("vidB", 0, 1)]
    assert load_item(items[0])[:, 0, 0, 0].tolist() == [0, 1, 3]
    # spoof = 1 polarity
    (tmp_path / "p.csv").write_text("path,label\nframes/f000.png,1\n")
    assert read_manifest(tmp_path / "p.csv", live_label=0)[0].label == 0


def test_bad_inputs_name_the_item(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,domain,video_id\nx.png,,O,vidA\n")
    with pytest.raises(DataError, match=r"m.csv:2 \(video 'vidA'\): the label is missing"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "d.csv").write_text("path,label,domain\nx.png,live,\n")
    with pytest.raises(DataError, match="the domain is missing"):
        read_manifest(tmp_path / "d.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="video .*empty: the folder holds no frames"):
        read_frames(tmp_path / "empty")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read frame .*bad.png"):
        read_frames(tmp_path / "bad.png")
    with pytest.raises(DataError, match="does not exist"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "mixed.csv").write_text("path,label,video_id\na.png,live,v\nb.png,spoof,v\n")
    with pytest.raises(DataError, match="video 'v' has frames with different labels"):
        read_manifest(tmp_path / "mixed.csv")
