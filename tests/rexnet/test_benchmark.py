import pytest

from reprozoo.rexnet.benchmark import compare

pytest.importorskip("timm")


def test_compare_reports_ratio_rows_for_each_layout():
    out = compare(quick=True, batches=(1,), image_size=64, channels_last=True)
    (row,) = out["rows"]
    assert (row["batch"], row["size"], row["memory_format"]) == (1, 64, "channels_last")
    assert row["ours_ms"] > 0 and row["timm_ms"] > 0
    assert out["ratios"]["batch1_channels_last ours/timm"] == pytest.approx(row["ours_ms"] / row["timm_ms"], rel=0.01)
