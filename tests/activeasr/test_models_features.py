import numpy as np
import pytest
import torch

from reprozoo.activeasr.features import (
    AugmentConfig,
    FeatureConfig,
    Featurizer,
    LogMel,
    add_noise,
    spec_augment,
    speed_perturb,
    strong_augment,
)
from reprozoo.activeasr.models import conv_out_length
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import create_model


@pytest.mark.parametrize("name,params", [("ctc_crnn_small", 622_397), ("ctc_crnn_tiny", 135_277),
                                         ("ctc_tcn_tiny", 273_741)])
def test_parameter_counts(name, params):
    assert count_params(create_model(name)) == params


@pytest.mark.parametrize("name", ["ctc_crnn_tiny", "ctc_tcn_tiny"])
def test_output_shape_and_padding_invariance(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 101, 40)
    x[1, 60:] = 0
    lengths = torch.tensor([101, 60])
    with torch.no_grad():
        lp, n = model(x, lengths)
        alone, n1 = model(x[1:2, :60], lengths[1:])
    assert lp.shape == (26, 2, 29) and n.tolist() == [26, 15] and n1.tolist() == [15]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(26, 2), atol=1e-5)
    assert torch.allclose(lp[:15, 1], alone[:, 0], atol=1e-5)


def test_conv_out_length():
    assert conv_out_length(torch.tensor([1, 4, 5, 101])).tolist() == [1, 1, 2, 26]


def test_logmel_frames_and_per_utterance_normalisation():
    lm = LogMel(FeatureConfig())
    g = torch.Generator().manual_seed(0)
    waves = torch.zeros(2, 16000)
    waves[0] = torch.randn(16000, generator=g)
    waves[1, :8000] = torch.randn(8000, generator=g)
    feats, lengths = lm(waves, torch.tensor([16000, 8000]))
    assert feats.shape == (2, 101, 40) and lengths.tolist() == [101, 51]
    valid = feats[1, :51]
    assert abs(float(valid.mean())) < 1e-4 and abs(float(valid.std(unbiased=False)) - 1) < 1e-3
    assert float(feats[1, 51:].abs().max()) == 0.0


def test_speed_perturbation_and_noise_level():
    w = torch.sin(torch.arange(16000) * 0.05)
    assert speed_perturb(w, 1.1).numel() == 14545 and speed_perturb(w, 0.9).numel() == 17778
    assert speed_perturb(w, 1.0) is w
    noisy = add_noise(w, 10.0, torch.Generator().manual_seed(1))
    snr = 10 * np.log10(float(w.square().mean() / (noisy - w).square().mean()))
    assert abs(snr - 10.0) < 0.2


def test_spec_augment_scales_with_length_and_strength():
    feats = torch.ones(2, 50, 40)
    lengths = torch.tensor([50, 10])
    cfg = AugmentConfig(time_masks=2, time_width=100, time_max_frac=0.2)
    out = spec_augment(feats, lengths, cfg, torch.Generator().manual_seed(0))
    zeros_per_utt = (out[:, :, 0] == 0).sum(1)
    assert zeros_per_utt[0] <= 20 and zeros_per_utt[1] <= 4  # at most 2 masks x 20% of the length
    off = spec_augment(feats, lengths, AugmentConfig(strength=0.0, freq_masks=2, time_masks=2),
                       torch.Generator().manual_seed(0))
    assert torch.equal(off, feats)
    f_only = spec_augment(feats, lengths, AugmentConfig(freq_masks=2, freq_width=8), torch.Generator().manual_seed(0))
    assert ((f_only[0, 0] == 0).sum()) <= 16


def test_featurizer_is_deterministic_given_the_generator():
    waves = [torch.randn(8000, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    f = Featurizer()
    a = f(waves, strong_augment(), torch.Generator().manual_seed(5))
    b = f(waves, strong_augment(), torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    clean, n = f(waves)
    assert clean.shape == (3, 51, 40) and n.tolist() == [51] * 3
