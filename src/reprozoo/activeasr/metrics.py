"""Corpus-level character and word error rates (with ``jiwer``).

CER = sum over utterances of the character Levenshtein distance / sum of reference lengths, and WER
likewise over words: the corpus-level rates ASR papers report, not a mean of per-utterance rates.
Both are returned in percent. Empty references are refused (their rate is undefined).

The edit counts and the reference lengths come from the same tokenisation, jiwer's: ``cer`` strips
each transcript and counts its characters (inner spaces included), ``wer`` also collapses runs of
spaces and splits on the space character only (a tab is part of a word, as in jiwer). The length
is ``hits + substitutions + deletions`` of jiwer's alignment, so every rate equals jiwer's own
``cer`` / ``wer`` on the same lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from reprozoo.errors import DataError
from reprozoo.runtime.extras import require


def _strings(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise DataError(f"{name} must be a list of transcripts, not one string (wrap it: [{texts[:20]!r}])")
    try:
        texts = list(texts)
    except TypeError:
        raise DataError(f"{name} must be a list of transcripts, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"{name}[{i}] must be a string, got {type(t).__name__} {t!r:.40}")
    return texts


def _check(refs: Sequence[str], hyps: Sequence[str]) -> tuple[list[str], list[str]]:
    refs, hyps = _strings(refs, "references"), _strings(hyps, "hypotheses")
    if len(refs) != len(hyps) or not refs:
        raise DataError(f"need the same non-zero number of references and hypotheses, got {len(refs)} and {len(hyps)}")
    for i, r in enumerate(refs):
        if not r.strip():
            raise DataError(f"reference transcript {i} is empty; drop it before scoring")
    return refs, hyps


def _rate(out) -> float:
    """Errors over the reference length, both from the one jiwer alignment."""
    return (out.substitutions + out.deletions + out.insertions) / (out.hits + out.substitutions + out.deletions)


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level character error rate in percent (jiwer's tokenisation: transcripts stripped)."""
    jiwer = require("jiwer", what="CER/WER")

    refs, hyps = _check(refs, hyps)
    return 100.0 * _rate(jiwer.process_characters(refs, hyps))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level word error rate in percent (jiwer's tokenisation: words split on spaces)."""
    jiwer = require("jiwer", what="CER/WER")

    refs, hyps = _check(refs, hyps)
    return 100.0 * _rate(jiwer.process_words(refs, [h if h.strip() else "" for h in hyps]))


def utterance_cer(ref: str, hyp: str) -> float:
    """Character error rate of one utterance (a fraction, for acquisition by MC disagreement); an
    empty (or blank) reference gives 0 against an empty hypothesis and 1 otherwise."""
    jiwer = require("jiwer", what="CER/WER")

    ref, hyp = _strings([ref, hyp], "transcripts")
    if not ref.strip():
        return 0.0 if not hyp.strip() else 1.0
    if not hyp.strip():
        return 1.0  # every reference character deleted
    return _rate(jiwer.process_characters(ref, hyp))
