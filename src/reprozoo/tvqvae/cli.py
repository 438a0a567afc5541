"""``reprozoo topics CORPUS --k 20 --out DIR``: fit TVQ-VAE on a corpus and write its topics."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import DataError


def write_topics(model, out: Path, corpus_name: str, n_skipped: int, top_n: int = 10) -> dict:
    """``topics.json``, ``figures/topic_words.png`` and ``topics.html`` for a fitted model."""
    from reprozoo.runtime.figures import pyplot, save_figure
    from reprozoo.runtime.report import atomic_write_text

    topics = [{"topic": k, "words": [w for w, _ in model.get_topic(k, top_n)],
               "scores": [round(s, 4) for _, s in model.get_topic(k, top_n)]} for k in range(model.n_topics)]
    data = {"corpus": corpus_name, "n_topics": model.n_topics, "vocabulary": len(model.vocab_),
            "skipped_documents": n_skipped, "topics": topics}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "topics.json", json.dumps(data, indent=1) + "\n")
    plt = pyplot()
    cols = min(5, model.n_topics)
    rows = -(-model.n_topics // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for t, ax in zip(topics, axes.flat):
        ax.axis("on")
        n = min(8, len(t["words"]))
        ax.barh(range(n)[::-1], t["scores"][:n], color="C3")
        ax.set_yticks(range(n)[::-1], t["words"][:n], fontsize=7)
        ax.set_title(f"topic {t['topic']}", fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    figure = save_figure(fig, out, "topic_words")
    items = "\n".join(f"<tr><td>{t['topic']}</td><td>{html.escape(', '.join(t['words']))}</td></tr>" for t in topics)
    page = (f"<!doctype html><meta charset='utf-8'><title>topics: {html.escape(corpus_name)}</title>"
            f"<h1>{model.n_topics} TVQ-VAE topics of {html.escape(corpus_name)}</h1>"
            f"<p>vocabulary {len(model.vocab_)} words; {n_skipped} documents skipped (no vocabulary word)</p>"
            f"<table border=1 cellpadding=4><tr><th>topic</th><th>top words</th></tr>{items}</table>"
            f"<p><img src='{figure}' style='max-width:100%'></p>")
    atomic_write_text(out / "topics.html", page)
    return data


def register(app: typer.Typer) -> None:
    @app.command("topics")
    def topics_cmd(
        corpus: Annotated[Path, typer.Argument(help="text file (one document per line), folder of .txt files, "
                                                    "or JSON lines with a 'text' (and optional 'label') field")],
        out: Annotated[Path, typer.Option(help="output folder (topics.json, topics.html, figures/)")],
        k: Annotated[int, typer.Option("--k", help="number of topics")] = 20,
        encoder: Annotated[str, typer.Option(help="local Hugging Face model folder (default: bundled MiniLM)")] = "",
        top_n: Annotated[int, typer.Option(help="words shown per topic")] = 10,
        min_df: Annotated[int, typer.Option(help="keep words in at least this many documents")] = 2,
        vq_epochs: Annotated[int, typer.Option(help="VQ autoencoder epochs")] = 30,
        topic_epochs: Annotated[int, typer.Option(help="topic-model epochs")] = 300,
        seed: Annotated[int, typer.Option(help="random seed")] = 0,
        replace_bad_bytes: Annotated[bool, typer.Option(help="replace non-UTF-8 bytes instead of failing")] = False,
        save_model: Annotated[bool, typer.Option(help="also save the fitted model to OUT/model")] = False,
    ) -> None:
        """Fit a TVQ-VAE topic model on CORPUS and print its topics."""
        from reprozoo.data.textcorpora import read_corpus
        from reprozoo.tvqvae.estimator import TVQVAE

        if out.exists() and not out.is_dir():
            raise DataError(f"--out {out} is a file; pass a folder")
        if top_n < 1:
            raise DataError(f"--top-n must be >= 1, got {top_n}")
        docs = read_corpus(corpus, encoding_errors="replace" if replace_bad_bytes else "strict")
        model = TVQVAE(k, encoder=encoder or None, min_df=min_df, vq_epochs=vq_epochs, topic_epochs=topic_epochs,
                       random_state=seed, verbose=None).fit(docs)
        data = write_topics(model, out, str(corpus), model.n_skipped_, top_n)
        for t in data["topics"]:
            typer.echo(f"topic {t['topic']:>3}: {' '.join(t['words'])}")
        if model.n_skipped_:
            typer.echo(f"skipped {model.n_skipped_} document(s) with no vocabulary word")
        if save_model:
            model.save(out / "model")
        typer.echo(f"wrote {out / 'topics.json'}, {out / 'topics.html'}")
