"""Character alphabet for CTC: blank (index 0), space, apostrophe, a-z (29 symbols).

Transcripts are normalised before encoding: lower-cased, accents stripped (NFKD), curly
apostrophes made straight, word-joining marks turned into a space (every dash and hyphen, i.e. the
Unicode class Pd: ``-``, en dash, em dash, ..., and ``&`` and ``/``: "rock&roll" and "well—known"
become two words, as "well-known" does), then digits and other characters outside the alphabet
either removed (``oov="drop"``, the default; the count is returned) or refused (``oov="error"``),
and runs of whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import torch

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite_tensor

BLANK = 0
SYMBOLS = ("<blank>", " ", "'") + tuple("abcdefghijklmnopqrstuvwxyz")
VOCAB_SIZE = len(SYMBOLS)
_INDEX = {c: i for i, c in enumerate(SYMBOLS) if i != BLANK}
_APOSTROPHES = "\u2018\u2019\u02bc"
_SEPARATORS = "&/"


def _separator(c: str) -> bool:
    return c in _SEPARATORS or unicodedata.category(c) == "Pd"


def normalize(text: str, oov: str = "drop") -> tuple[str, int]:
    """(normalised text, number of dropped characters). ``oov`` is ``drop`` or ``error``."""
    if oov not in ("drop", "error"):
        raise DataError(f"oov must be 'drop' or 'error', got '{oov}'")
    if not isinstance(text, str):
        raise DataError(f"a transcript must be a string, got {type(text).__name__} {text!r:.40}")
    base = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    base = "".join("'" if c in _APOSTROPHES else " " if _separator(c) else c for c in base).lower()
    lost = sum(1 for c in base if ord(c) > 127)
    s = re.sub(r"\s+", " ", base.encode("ascii", "ignore").decode()).strip()
    bad = [c for c in s if c not in _INDEX]
    if (bad or lost) and oov == "error":
        raise DataError(f"transcript {text!r} has characters outside a-z, space and apostrophe: "
                        f"{sorted(set(bad) | {c for c in base if ord(c) > 127})}")
    s = re.sub(r"\s+", " ", "".join(c for c in s if c in _INDEX)).strip()
    return s, len(bad) + lost


def encode(text: str) -> list[int]:
    """Normalised text -> symbol ids (no blanks)."""
    try:
        return [_INDEX[c] for c in text]
    except KeyError as err:
        raise DataError(f"character {err.args[0]!r} of {text!r} is not in the alphabet; normalise first") from None


def decode_ids(ids: Sequence[int]) -> str:
    return "".join(SYMBOLS[i] for i in ids if i != BLANK)


def ctc_collapse(path: Sequence[int]) -> list[int]:
    """CTC best path -> label ids: merge repeats, then drop blanks."""
    out, prev = [], None
    for p in path:
        p = int(p)
        if p != prev and p != BLANK:
            out.append(p)
        prev = p
    return out


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """(T, B, V) log-posteriors + output lengths -> one transcript per utterance."""
    finite_tensor("log_probs", log_probs)
    if log_probs.dim() != 3 or lengths.shape != (log_probs.shape[1],):
        raise DataError(f"log_probs must be (time, batch, vocabulary) with one length per utterance, got "
                        f"{tuple(log_probs.shape)} and lengths {tuple(lengths.shape)}")
    best = log_probs.argmax(-1).T.tolist()
    return [decode_ids(ctc_collapse(b[: int(n)])).strip() for b, n in zip(best, lengths.tolist())]
