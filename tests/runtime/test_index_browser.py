"""The results page as a reader sees it: rendered by headless Chromium (Debian ``chromium``)."""

import shutil
import subprocess

import pytest

import tests.runtime.toy  # noqa: F401  (registers _toy)
from reprozoo.cli import main


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_index_renders_with_every_image_loaded(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("needs Chromium: apt-get install chromium")
    runs = tmp_path / "runs"
    assert main(["run", "_toy", "--preset", "quick", "--out", str(runs / "_toy")]) == 0
    assert main(["report", str(runs)]) == 0
    page = runs / "index.html"
    # count the images that decoded (naturalWidth > 0) and write it into the DOM we dump
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace(
        "</body>",
        "<script>window.onload=function(){var i=[].slice.call(document.images);"
        "document.title='loaded '+i.filter(function(x){return x.naturalWidth>0}).length+' of '+i.length;};"
        "</script></body>"))
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run(common + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    n = page.read_text().count("<img ")
    assert n >= 2  # the figure and its enlarged view
    assert f"<title>loaded {n} of {n}</title>" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(common + ["--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not a blank page
    assert len(set(img.getdata())) > 20
