"""Corpus-level character and word error rates (with ``jiwer``).

CER = sum over utterances of the character Levenshtein distance / sum of reference lengths, and WER
likewise over words: the corpus-level rates ASR papers report, not a mean of per-utterance rates.
Both are returned in percent. Empty references are refused (their rate is undefined).
"""

from __future__ import annotations

from collections.abc import Sequence

from reprozoo.errors import DataError


def _check(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if len(refs) != len(hyps) or not refs:
        raise DataError(f"need the same non-zero number of references and hypotheses, got {len(refs)} and {len(hyps)}")
    if any(not r.strip() for r in refs):
        raise DataError("a reference transcript is empty; drop it before scoring")


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level character error rate in percent."""
    import jiwer

    _check(refs, hyps)
    out = jiwer.process_characters(list(refs), list(hyps))
    n = sum(len(r) for r in refs)
    return 100.0 * (out.substitutions + out.deletions + out.insertions) / n


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level word error rate in percent."""
    import jiwer

    _check(refs, hyps)
    out = jiwer.process_words(list(refs), [h if h.strip() else "" for h in hyps])
    n = sum(len(r.split()) for r in refs)
    return 100.0 * (out.substitutions + out.deletions + out.insertions) / n


def utterance_cer(ref: str, hyp: str) -> float:
    """Character error rate of one utterance (a fraction, for acquisition by MC disagreement)."""
    import jiwer

    if not ref:
        return 0.0 if not hyp else 1.0
    out = jiwer.process_characters(ref, hyp)
    return (out.substitutions + out.deletions + out.insertions) / len(ref)
