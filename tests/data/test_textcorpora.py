import json

import pytest

from reprozoo.data.textcorpora import (
    FORTUNES_INSTALL,
    PROCEDURAL_TOPICS,
    fortunes_available,
    load_fortunes,
    procedural_corpus,
    read_corpus,
)
from reprozoo.errors import DataError, MissingDependencyError


def test_fortunes_reader_on_a_fixture(tmp_path):
    (tmp_path / "food").write_text("Eat your soup\nwhile it is hot.\n%\nBread and butter.\n%\nx\n%\n")
    (tmp_path / "law").write_text("The court is in session today.\n%\n")
    (tmp_path / "food.dat").write_bytes(b"\x00")
    c = load_fortunes(["food", "law"], root=tmp_path, min_words=2)
    assert c.texts == ["Eat your soup while it is hot.", "Bread and butter.", "The court is in session today."]
    assert c.labels == ["food", "food", "law"] and c.label_ids().tolist() == [0, 0, 1]
    assert load_fortunes(None, root=tmp_path, min_words=1).label_names == ["food", "law"]
    with pytest.raises(DataError, match="not found"):
        load_fortunes(["zippy"], root=tmp_path)


def test_missing_fortunes_prints_the_install_line(tmp_path):
    with pytest.raises(MissingDependencyError, match="apt-get install -y fortunes"):
        load_fortunes(root=tmp_path / "absent")
    assert FORTUNES_INSTALL == "sudo apt-get install -y fortunes"


@pytest.mark.skipif(not fortunes_available(), reason="Debian package 'fortunes' not installed")
def test_installed_fortunes_categories():
    c = load_fortunes(["startrek", "food"])
    counts = {lab: c.labels.count(lab) for lab in c.label_names}
    assert counts["startrek"] > 200 and counts["food"] > 150
    assert len(load_fortunes(["startrek"], max_per_category=10)) == 10


def test_generic_readers(tmp_path):
    lines = tmp_path / "docs.txt"
    lines.write_text("first document\n\nsecond document\n")
    assert read_corpus(lines).texts == ["first document", "second document"]
    jl = tmp_path / "docs.jsonl"
    jl.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in (("a b", "x"), ("c d", "y"))))
    c = read_corpus(jl)
    assert c.texts == ["a b", "c d"] and c.labels == ["x", "y"]
    folder = tmp_path / "folder"
    (folder / "sports").mkdir(parents=True)
    (folder / "sports" / "1.txt").write_text("goal")
    (folder / "music").mkdir()
    (folder / "music" / "2.txt").write_text("song")
    c = read_corpus(folder)
    assert c.texts == ["song", "goal"] and c.labels == ["music", "sports"]


def test_reader_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt: line 2 is not valid UTF-8"):
        read_corpus(bad)
    assert read_corpus(bad, encoding_errors="replace").texts[1] == "broken \ufffd byte"
    jl = tmp_path / "x.jsonl"
    jl.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(DataError, match="line 2 needs a string field 'text'"):
        read_corpus(jl)
    with pytest.raises(DataError, match="does not exist"):
        read_corpus(tmp_path / "nope.txt")


def test_procedural_corpus_is_seeded_and_labelled():
    a, b = procedural_corpus(50, 3, seed=1), procedural_corpus(50, 3, seed=1)
    assert a.texts == b.texts and a.labels == b.labels
    assert set(a.labels) <= {"space", "food", "sports"}
    words = set(" ".join(a.texts).replace(".", "").split())
    topical = set().union(*(PROCEDURAL_TOPICS[n] for n in ("space", "food", "sports")))
    assert topical & words and not (words - topical - {"the", "a", "and", "of", "to", "in", "is", "was", "with",
                                                       "for", "it", "on", "that", "this"})
    with pytest.raises(DataError):
        procedural_corpus(10, 99)
