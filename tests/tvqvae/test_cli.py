import json

from reprozoo.cli import main
from reprozoo.data.textcorpora import procedural_corpus


def test_topics_command_writes_json_figure_and_html(tiny_encoder, tmp_path, capsys):
    corpus = tmp_path / "docs.jsonl"
    c = procedural_corpus(60, 3, words_per_doc=12, seed=2)
    corpus.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in zip(c.texts, c.labels)))
    out = tmp_path / "out"
    code = main(["topics", str(corpus), "--k", "3", "--out", str(out), "--encoder", tiny_encoder,
                 "--vq-epochs", "1", "--topic-epochs", "3", "--top-n", "5", "--save-model"])
    assert code in (0, None)
    data = json.loads((out / "topics.json").read_text())
    assert data["n_topics"] == 3 and [len(t["words"]) for t in data["topics"]] == [5, 5, 5]
    assert (out / "figures" / "topic_words.png").exists() and (out / "model.safetensors").is_file()
    assert "TVQ-VAE topics" in (out / "topics.html").read_text()
    printed = capsys.readouterr().out
    assert "topic   0:" in printed and data["topics"][0]["words"][0] in printed


def test_topics_command_reports_bad_input_on_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xfe\n")
    assert main(["topics", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "line 2 is not valid UTF-8" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
