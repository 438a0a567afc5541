import math

import pytest
import torch

from reprozoo.activeasr.metrics import cer, utterance_cer, wer
from reprozoo.activeasr.text import (
    SYMBOLS,
    VOCAB_SIZE,
    ctc_collapse,
    decode_ids,
    encode,
    greedy_decode,
    normalize,
)
from reprozoo.errors import DataError


def test_alphabet():
    assert VOCAB_SIZE == 29 and SYMBOLS[0] == "<blank>" and SYMBOLS[1] == " "
    assert decode_ids(encode("it's on")) == "it's on"


def test_ctc_collapse_merges_repeats_then_drops_blanks():
    assert ctc_collapse([0, 5, 5, 0, 5, 6, 6, 0, 0]) == [5, 5, 6]
    assert ctc_collapse([0, 0, 0]) == []


def test_greedy_decode_on_crafted_posteriors():
    a, b = SYMBOLS.index("a"), SYMBOLS.index("b")
    path = [[a, a, 0, a, b, 0], [b, 0, 0, 0, 0, 0]]
    lp = torch.full((6, 2, VOCAB_SIZE), -10.0)
    for i, p in enumerate(path):
        for t, s in enumerate(p):
            lp[t, i, s] = 0.0
    assert greedy_decode(lp, torch.tensor([6, 1])) == ["aab", "b"]
    assert greedy_decode(lp, torch.tensor([3, 1])) == ["a", "b"]  # frames beyond the length are ignored


def test_normalize_drops_or_rejects_out_of_alphabet_characters():
    assert normalize("Turn ON the Light’s 5 Café!") == ("turn on the light's cafe", 2)
    assert normalize("  set   the-fan ") == ("set the fan", 0)
    with pytest.raises(DataError, match="outside a-z"):
        normalize("call 911", oov="error")


def test_corpus_level_cer_and_wer():
    # distances 1 + 2 over 3 + 2 reference characters: 60%, not the mean of 33% and 100%
    assert cer(["abc", "de"], ["abd", ""]) == pytest.approx(60.0)
    assert wer(["a b c", "d e"], ["a b d", ""]) == pytest.approx(60.0)
    assert wer(["turn on the fan"], ["turn of the fan please"]) == pytest.approx(50.0)
    assert utterance_cer("ab", "ba") == 1.0 and utterance_cer("", "") == 0.0
    with pytest.raises(DataError, match="empty"):
        cer([""], ["x"])
    with pytest.raises(DataError, match="same non-zero number"):
        cer(["a"], [])
    assert math.isclose(cer(["hello"], ["hello"]), 0.0)
