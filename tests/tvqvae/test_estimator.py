import numpy as np
import pytest
import torch

from reprozoo.data.textcorpora import procedural_corpus
from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.tvqvae import baselines
from reprozoo.tvqvae.embeddings import TokenEncoder, cache_dir
from reprozoo.tvqvae.estimator import TVQVAE, NotFittedError, prepare_corpus
from reprozoo.tvqvae.preprocess import Vocabulary, tokenize
from reprozoo.tvqvae.training import NonFiniteLossError

SMALL = {"n_codes": 16, "code_dim": 8, "n_neighbors": 2, "vq_hidden": (16,), "vq_epochs": 2, "topic_epochs": 5,
         "batch_size": 32, "max_len": 64}


@pytest.fixture(scope="module")
def corpus():
    return procedural_corpus(80, 3, words_per_doc=12, seed=0)


@pytest.fixture(scope="module")
def fitted(tiny_encoder, corpus):
    return TVQVAE(3, encoder=tiny_encoder, **SMALL, random_state=0).fit(corpus)


def test_tokenizer_and_vocabulary():
    assert tokenize("The Starship's captain, Kirk -- and 42 spocks!") == ["starship", "captain", "kirk", "spocks"]
    docs = [["a1", "b"], ["b", "c"], ["b", "c"], ["d"]]
    v = Vocabulary.build(docs, min_df=2, max_df=0.6)
    assert v.words == ["c"]  # b is in 3/4 > 0.6 of documents, a1 and d in one
    assert Vocabulary.build(docs, min_df=1, max_df=1.0, allowed={"b", "d"}).words == ["b", "d"]
    assert v.bow([["c", "c", "x"]]).tolist() == [[2.0]]
    with pytest.raises(DataError, match="vocabulary is empty"):
        Vocabulary.build(docs, min_df=5)


def test_countvectorizer_vocabulary_equals_the_former_hand_written_one(corpus):
    """Vocabulary.build / bow now come from CountVectorizer; the former loops, kept here as the
    reference, give the same words and the same counts on a fixed corpus."""
    from collections import Counter

    import scipy.sparse as sp

    docs = [tokenize(t) for t in corpus.texts] + [["zebra", "zebra"], []]
    for min_df, max_df, allowed in ((2, 0.5, None), (1, 1.0, None), (3, 0.2, {"planet", "pizza", "goal"})):
        df = Counter(w for d in docs for w in set(d))
        ref = sorted(w for w, n in df.items() if min_df <= n <= max_df * len(docs)
                     and (allowed is None or w in allowed))
        vocab = Vocabulary.build(docs, min_df=min_df, max_df=max_df, allowed=allowed)
        assert vocab.words == ref
        dense = np.zeros((len(docs), len(ref)), dtype=np.float32)
        for i, d in enumerate(docs):
            for w in d:
                if w in vocab.index:
                    dense[i, vocab.index[w]] += 1
        counts = vocab.counts(docs)
        assert sp.issparse(counts) and counts.dtype == np.int64
        assert np.array_equal(vocab.bow(docs), dense) and vocab.bow(docs).dtype == np.float32


def test_whole_word_alignment_and_cache(tiny_encoder):
    enc = TokenEncoder(tiny_encoder, max_len=32)
    out = enc.encode(["The telescope saw a comet.", "Zorglubian telescope"])
    # 'zorglubian' is split into word pieces by the tokenizer: not a whole-word token
    assert out.words.tolist() == ["telescope", "saw", "comet", "telescope"]
    assert out.doc.tolist() == [0, 0, 0, 1] and out.vectors.shape == (4, 32)
    assert np.allclose(np.linalg.norm(out.sentence, axis=1), 1.0, atol=1e-5)
    assert list(cache_dir().glob(f"embeddings-{enc.cache_key(['The telescope saw a comet.', 'Zorglubian telescope'])}*"))
    again = enc.encode(["The telescope saw a comet.", "Zorglubian telescope"])
    assert np.array_equal(again.vectors, out.vectors)
    mean = TokenEncoder(tiny_encoder, max_len=32, pooling="mean").encode(["Zorglubian telescope"])
    assert mean.words.tolist() == ["zorglubian", "telescope"]
    # contextual: the same word in two contexts gets two vectors
    assert not np.allclose(out.vectors[0], out.vectors[3])


def test_fit_transform_topics_generate(fitted, corpus):
    assert fitted.topics_.shape == (3, len(fitted.vocab_))
    theta = fitted.transform(corpus.texts[:7])
    assert theta.shape == (7, 3) and np.allclose(theta.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(theta, fitted.transform(corpus.texts[:7]))  # deterministic
    topic = fitted.get_topic(1, top_n=5)
    assert len(topic) == 5 and all(w in fitted.vocab_ for w, _ in topic)
    assert [s for _, s in topic] == sorted((s for _, s in topic), reverse=True)
    assert np.allclose(fitted.topics_.mean(0), 0.0, atol=1e-5)  # standardised over topics
    words = fitted.generate(0, n_words=12, random_state=3)
    assert len(words) == 12 and words == fitted.generate([1.0, 0.0, 0.0], n_words=12, random_state=3)
    with pytest.raises(DataError, match="topic 3 does not exist"):
        fitted.get_topic(3)
    with pytest.raises(DataError, match="summing to 1"):
        fitted.generate([0.5, 0.1, 0.1])


def test_same_seed_same_model_and_save_load_roundtrip(fitted, corpus, tiny_encoder, tmp_path):
    again = TVQVAE(3, encoder=tiny_encoder, **SMALL, random_state=0).fit(corpus)
    assert np.array_equal(again.topics_, fitted.topics_)
    from reprozoo.runtime.checkpoint import checkpoint_meta

    written = fitted.save(tmp_path / "m.safetensors")
    assert written == tmp_path / "m.safetensors" and sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    meta = checkpoint_meta(written)  # the library format: name, kwargs, version, vocabulary
    assert meta["model"] == "TVQVAE" and meta["kwargs"] == {**fitted.get_params(), "vq_hidden": list(fitted.vq_hidden)}
    assert meta["extra"]["vocabulary"] == fitted.vocab_.to_list() and meta["extra"]["input_dim"] == fitted.input_dim_
    loaded = TVQVAE.load(written)
    assert np.array_equal(loaded.topics_, fitted.topics_)
    assert np.array_equal(loaded.transform(corpus.texts[:5]), fitted.transform(corpus.texts[:5]))
    assert loaded.save(tmp_path / "again").read_bytes() == written.read_bytes()  # the ending is added
    assert np.array_equal(TVQVAE.load(tmp_path / "again").topics_, fitted.topics_)
    with pytest.raises(CheckpointError, match="not a saved TVQVAE"):
        TVQVAE.load(tmp_path)


def test_errors_before_fit_and_on_bad_input(tiny_encoder, corpus, tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TVQVAE(3).transform(["text"])
    with pytest.raises(DataError, match="corpus is empty"):
        TVQVAE(3, encoder=tiny_encoder, **SMALL).fit([])
    with pytest.raises(DataError, match="empty after preprocessing"):
        TVQVAE(3, encoder=tiny_encoder, **SMALL).fit(["the and of", "42 !!"])
    with pytest.raises(DataError, match="larger than the number of documents"):
        TVQVAE(500, encoder=tiny_encoder, **{**SMALL, "n_codes": 4}).fit(corpus.texts[:40])
    with pytest.raises(ConfigError, match="n_neighbors"):
        TVQVAE(3, n_codes=4, n_neighbors=5).fit(["x"])
    (tmp_path / "empty_model").mkdir()
    (tmp_path / "empty_model" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="has no weights"):
        TVQVAE(3, encoder=str(tmp_path / "empty_model")).fit(corpus.texts)


def test_documents_without_vocabulary_words_are_skipped_with_a_count(tiny_encoder, corpus):
    docs = list(corpus.texts[:40]) + ["", "the of and", "xylophonic quixotry"]
    data = prepare_corpus(docs, TokenEncoder(tiny_encoder, max_len=64), min_df=2)
    assert data.n_skipped == 3 and len(data.texts) == 40 and data.bow.shape[0] == 40
    assert (data.bow.sum(1) > 0).all()


def test_a_nan_loss_stops_training_with_the_step(tiny_encoder, corpus):
    data = prepare_corpus(corpus, TokenEncoder(tiny_encoder, max_len=64))
    data.encoded.vectors[5] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"VQ autoencoder: the loss became nan at step 1"):
        TVQVAE(3, **SMALL).fit_prepared(data)


def test_recovers_known_topics_with_minilm():
    """The bundled MiniLM on the procedural corpus: the mixtures recover the dominant true topic and
    every learned topic is led by one true word list."""
    torch.set_num_threads(1)
    from reprozoo.data.textcorpora import PROCEDURAL_TOPICS
    from reprozoo.tvqvae.metrics import clustering_scores

    c = procedural_corpus(120, 3, words_per_doc=20, seed=0)
    data = prepare_corpus(c, TokenEncoder(max_len=64))
    m = TVQVAE(3, n_codes=48, code_dim=32, vq_hidden=(64,), vq_epochs=3, topic_epochs=60, random_state=0)
    m.fit_prepared(data)
    assert m.codebook_usage_ == 1.0
    assert clustering_scores(m.transform_counts(m.code_counts_), data.labels, 3)["nmi_argmax"] > 0.8
    truth = {n: set(PROCEDURAL_TOPICS[n]) for n in ("space", "food", "sports")}
    for words in m.get_topics(6):
        assert max(len(set(words) & t) for t in truth.values()) >= 3, words


def test_k_larger_than_the_vocabulary_is_refused(tiny_encoder):
    # 30 documents but a 3-word vocabulary: K=5 fits the documents, not the vocabulary
    docs = [f"{a} {b}" for a, b in zip(["apple", "banana", "cherry"] * 10, ["banana", "cherry", "apple"] * 10)]
    enc = TokenEncoder(tiny_encoder, max_len=32)
    with pytest.raises(DataError, match=r"K=5 is larger than the number of documents \(30\) or the vocabulary \(3 words\)"):
        prepare_corpus(docs, enc, min_df=1, max_df=1.0, max_topics=5)
    data = prepare_corpus(docs, enc, min_df=1, max_df=1.0)
    assert data.bow.shape == (30, 3)
    with pytest.raises(DataError, match=r"n_topics=5 is larger than the number of documents \(30\) or the vocabulary \(3\)"):
        TVQVAE(5, **{**SMALL, "n_codes": 4}).fit_prepared(data)
    for fit in (lambda: baselines.prodlda(data, 5, 0, epochs=1), lambda: baselines.lda(data, 5, 0, passes=1),
                lambda: baselines.embedding_clusters(data, 5, 0), lambda: baselines.random_topics(data, 5, 0)):
        with pytest.raises(DataError, match=r"K=5 must be in 2..min\(documents, vocabulary\) = 3"):
            fit()


def test_a_nan_loss_in_the_topic_stage_stops_before_the_update(tiny_encoder, corpus):
    data = prepare_corpus(corpus, TokenEncoder(tiny_encoder, max_len=64))
    data.bow[0, 0] = np.nan  # reaches the word reconstruction of the first batch
    with pytest.raises(NonFiniteLossError, match=r"TVQ-VAE topics: the loss became nan at step 1"):
        TVQVAE(3, **{**SMALL, "batch_size": 1000}).fit_prepared(data)
    with pytest.raises(DataError, match=r"^Input X contains NaN\.$"):  # ProdLDA checks its counts first
        baselines.prodlda(data, 3, 0, epochs=2, batch_size=1000)


def test_the_device_is_read_by_the_runtime_resolver_in_fit():
    """TVQVAE and ProdLDA have no resolver of their own: ``fit`` checks the device with
    runtime.accel.resolve_device before any work (a bad name is a one-line ConfigError)."""
    import reprozoo.tvqvae.embeddings as embeddings
    import reprozoo.tvqvae.estimator as estimator

    assert not hasattr(estimator, "resolve_device") or estimator.resolve_device.__module__ == "reprozoo.runtime.accel"
    assert not hasattr(embeddings, "_pick_device")
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        TVQVAE(3, device="gpu").fit(["x"])
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
            TVQVAE(3, device="cuda:0").fit(["x"])
    assert TVQVAE(3).get_params()["device"] == "auto"
