"""CER / WER use one tokenisation (jiwer's) for edits and lengths; normalize treats every
word-joining mark alike; misuse raises one-line reprozoo errors."""

import math

import jiwer
import pytest
import torch

from reprozoo.activeasr.metrics import cer, utterance_cer, wer
from reprozoo.activeasr.text import greedy_decode, normalize
from reprozoo.errors import DataError


def test_rates_equal_jiwer_on_untidy_whitespace():
    # the lengths used to come from the raw strings: 8.33 and 66.7
    assert cer(["hello world\n"], ["hello word"]) == pytest.approx(100 / 11)
    assert cer(["hello world\n"], ["hello word"]) == pytest.approx(100 * jiwer.cer(["hello world\n"], ["hello word"]))
    assert wer(["a\tb c"], ["a b c"]) == pytest.approx(100.0)
    assert wer(["a\tb c"], ["a b c"]) == pytest.approx(100 * jiwer.wer(["a\tb c"], ["a b c"]))
    refs, hyps = ["the cat  sat ", " on the mat"], ["the bat sat", "on mat"]
    assert cer(refs, hyps) == pytest.approx(100 * jiwer.cer(refs, hyps))
    assert wer(refs, hyps) == pytest.approx(100 * jiwer.wer(refs, hyps)) == pytest.approx(100 / 3)  # 2 edits in 6 words
    assert utterance_cer(" abc ", "abd") == pytest.approx(1 / 3)
    assert utterance_cer("abc", "") == 1.0 and utterance_cer("", "") == 0.0


@pytest.mark.parametrize("call, message", [
    (lambda: cer([None], ["a"]), r"^references\[0\] must be a string, got NoneType None$"),
    (lambda: wer(["a"], [3]), r"^hypotheses\[0\] must be a string, got int 3$"),
    (lambda: cer("abc", "abd"), r"^references must be a list of transcripts, not one string"),
    (lambda: wer(["a", " \t"], ["a", "b"]), r"^reference transcript 1 is empty; drop it before scoring$"),
    (lambda: utterance_cer(None, "a"), r"^transcripts\[0\] must be a string"),
    (lambda: normalize(None), r"^a transcript must be a string, got NoneType None$"),
])
def test_misuse_is_one_line(call, message):
    with pytest.raises(DataError, match=message):
        call()


@pytest.mark.parametrize("text", ["well-known", "well\u2013known", "well\u2014known", "well&known", "well/known"])
def test_every_word_joining_mark_is_a_space(text):
    # en/em dashes and '&' used to be deleted (joining the words) while '-' became a space
    assert normalize(text) == ("well known", 0)


def test_normalize_keeps_apostrophes_and_counts_dropped():
    assert normalize("It\u2019s caf\u00e9 42") == ("it's cafe", 2)


def test_greedy_decode_refuses_nan_posteriors():
    lp = torch.zeros(4, 1, 29)
    lp[2, 0, 5] = math.nan
    with pytest.raises(DataError, match=r"^log_probs must be finite; index \(2, 0, 5\) is nan"):
        greedy_decode(lp, torch.tensor([4]))
    with pytest.raises(DataError, match="one length per utterance"):
        greedy_decode(torch.zeros(4, 2, 29), torch.tensor([4]))
